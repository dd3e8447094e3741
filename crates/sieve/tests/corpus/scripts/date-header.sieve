# RFC 5260 §4: date test on the Date header, in its original zone.
require ["date", "fileinto", "relational"];
if date :originalzone :value "ge" "date" "hour" "22" {
  fileinto "LateNight";
} elsif date :zone "+0000" :is "date" "year" "1999" {
  fileinto "Y2K";
}
