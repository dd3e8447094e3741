# RFC 3894 §3: :copy needs require "copy".
require "fileinto";
fileinto :copy "Folder";
