# Included by include-personal.sieve (RFC 6609): flags mail from example.org.
require "imap4flags";
if address :domain :is "from" "example.org" {
  addflag "$FromOrg";
}
