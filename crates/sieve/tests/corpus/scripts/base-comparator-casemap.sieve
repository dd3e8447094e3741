# RFC 5228 §2.7.3: i;octet is case-sensitive, i;ascii-casemap (the default) is not.
require "fileinto";
if header :comparator "i;octet" :contains "subject" "lunch" {
  fileinto "Octet";
} elsif header :contains "subject" "LUNCH" {
  fileinto "Casemap";
}
