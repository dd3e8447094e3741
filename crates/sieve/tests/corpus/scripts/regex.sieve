# draft-ietf-sieve-regex §3: :regex with a POSIX extended expression.
require ["regex", "fileinto"];
if header :regex "subject" "^\\[[a-z]+\\] " {
  fileinto "Tagged";
} elsif header :regex "subject" "[0-9]{4}-[0-9]+" {
  fileinto "Numbered";
}
