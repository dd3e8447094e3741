# RFC 5228 §4.1: fileinto; a duplicate fileinto to the same mailbox is done once.
require "fileinto";
if header :contains "subject" "" {
  fileinto "Archive";
  fileinto "Archive";
}
