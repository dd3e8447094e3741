# RFC 5228 §5.9: size :over / :under with a K suffix.
require "fileinto";
if size :over 50K {
  fileinto "Large";
} elsif size :under 1K {
  fileinto "Tiny";
}
