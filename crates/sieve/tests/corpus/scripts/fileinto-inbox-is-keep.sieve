# fileinto "INBOX" is the same as keep (RFC 5228 §4.1 and §2.10.3 merge them).
require "fileinto";
fileinto "INBOX";
keep;
