# RFC 5260 §5: currentdate (the year is fixed enough for a corpus).
require ["date", "relational", "fileinto"];
if currentdate :value "ge" "year" "2020" {
  fileinto "Recent";
}
