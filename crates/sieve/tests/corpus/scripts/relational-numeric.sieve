# RFC 5231 §4.2 with RFC 4790 i;ascii-numeric: compare X-Spam-Score as a number.
require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "10" {
  fileinto "Spam";
} elsif header :value "gt" :comparator "i;ascii-numeric" "x-spam-score" "2" {
  fileinto "Suspect";
}
