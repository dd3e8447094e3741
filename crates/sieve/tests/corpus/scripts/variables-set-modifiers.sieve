# RFC 5229 §4: set with :lower, :upperfirst and :length.
require ["variables", "fileinto"];
if header :matches "from" "*@*" {
  set :lower :upperfirst "dom" "${2}";
  set :length "len" "${1}";
  fileinto "From.${dom}";
  if string :is "${len}" "0" { discard; }
}
