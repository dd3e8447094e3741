# RFC 5260 §4.2: date-parts into variables (iso8601, weekday, julian).
require ["date", "variables", "fileinto"];
if date :zone "+0100" :matches "date" "date" "*" {
  set "d" "${1}";
}
if date :originalzone :matches "date" "weekday" "*" {
  fileinto "Day${1}.${d}";
}
