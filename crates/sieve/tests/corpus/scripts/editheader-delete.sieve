# RFC 5293 §5: deleteheader with a value pattern.
require ["editheader", "fileinto"];
deleteheader :matches "x-tag" "b*";
if not header :is "x-tag" "beta" {
  fileinto "BetaGone";
}
