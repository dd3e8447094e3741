# RFC 5490 §3.1: mailboxexists.
require ["fileinto", "mailbox"];
if mailboxexists "INBOX" {
  fileinto "INBOX";
} else {
  discard;
}
