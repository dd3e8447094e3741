# RFC 5228 §2.7.1: :matches with * and ? wildcards.
require "fileinto";
if header :matches "subject" "[sieve] *" {
  fileinto "Sieve";
} elsif header :matches "subject" "Your ?eekly *" {
  fileinto "Weekly";
}
