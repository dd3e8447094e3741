# RFC 5228 §3.2: fileinto without require "fileinto" is an error.
fileinto "Folder";
