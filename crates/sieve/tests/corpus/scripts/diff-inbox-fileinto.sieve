# diff: inbox fileinto (a case of the differential test against Pigeonhole)
require ["fileinto", "imap4flags"];
fileinto :flags "\\Seen" "INBOX";
