# RFC 5228 §5.5: exists is true only when every named header is present.
require "fileinto";
if exists ["message-id", "date"] {
  fileinto "Complete";
}
