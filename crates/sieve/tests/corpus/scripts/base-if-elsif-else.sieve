# RFC 5228 §3.1: if / elsif / else, first match wins.
require "fileinto";
if header :contains "subject" "Invoice" {
  fileinto "Invoices";
} elsif header :contains "subject" "report" {
  fileinto "Reports";
} else {
  fileinto "Other";
}
