# RFC 5260 §4.1: a :zone that is not +hhmm/-hhmm. Pigeonhole warns at compile time and
# compiles the script anyway; the hour shows which zone it falls back to.
require ["date", "variables", "fileinto"];
if date :zone "CET" :matches "date" "hour" "*" {
  fileinto "Hour.${1}";
}
