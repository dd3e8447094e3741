# RFC 5229 §5: the string test, and :quotewildcard (§4).
require ["variables", "fileinto"];
set :quotewildcard "q" "a*b?c";
if string :is "${q}" "a\\*b\\?c" {
  fileinto "Quoted";
}
