# RFC 4790 §9.1: i;ascii-numeric compares values, so "012" equals "12".
require ["comparator-i;ascii-numeric", "fileinto"];
if header :is :comparator "i;ascii-numeric" "x-spam-score" "012" {
  fileinto "Twelve";
}
