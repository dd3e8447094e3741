# diff: fileinto flags (a case of the differential test against Pigeonhole)
require ["fileinto", "imap4flags"];
# Work mail is filed and flagged; everything else stays in INBOX.
if header :contains "subject" "project" {
    addflag "\\Flagged";
    fileinto "Work";
} elsif header :contains "subject" "release" {
    fileinto :flags ["\\Seen", "$Lists"] "Lists";
}
