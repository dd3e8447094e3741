# RFC 5293 §4: addheader, then a header test sees the new field.
require ["editheader", "fileinto"];
addheader "X-Sieve-Filtered" "yes";
addheader :last "X-Note" "été";
if header :is "x-sieve-filtered" "yes" {
  fileinto "Edited";
}
