# diff: mailboxexists (a case of the differential test against Pigeonhole)
require ["mailbox", "fileinto"];
if mailboxexists "INBOX" { fileinto :create "Exists"; }
if not mailboxexists "Work" { fileinto "Missing"; }
