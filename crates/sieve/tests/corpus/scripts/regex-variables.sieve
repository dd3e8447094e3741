# draft-ietf-sieve-regex §4: regex groups set the match variables.
require ["regex", "variables", "fileinto"];
if header :regex "subject" "^\\[([a-z]+)\\]" {
  fileinto "lists.${1}";
}
