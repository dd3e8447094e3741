# RFC 5233 §3: :user and :detail address parts.
require ["subaddress", "envelope", "fileinto", "variables"];
if address :detail :matches "to" "*" {
  fileinto "Detail.${1}";
} elsif envelope :user :is "to" "user" {
  fileinto "User";
}
