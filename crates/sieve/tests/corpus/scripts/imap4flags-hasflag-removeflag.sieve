# RFC 5232 §3.3, §4: removeflag and the hasflag test.
require ["imap4flags", "fileinto"];
addflag ["\\Seen", "\\Answered", "$Todo"];
removeflag "\\Answered";
if hasflag :is "$Todo" {
  fileinto "Todo";
}
