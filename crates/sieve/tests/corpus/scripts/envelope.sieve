# RFC 5228 §5.4: envelope from and to.
require ["envelope", "fileinto"];
if envelope :domain :is "from" "example.org" {
  fileinto "FromOrg";
} elsif envelope :localpart :is "to" "user" {
  fileinto "ToUser";
}
