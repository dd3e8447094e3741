require ["fileinto", "imap4flags"];
fileinto :flags "\\Seen" "INBOX";
