# RFC 5228 §5.3, §5.8, §5.10: allof, anyof, not.
require "fileinto";
if allof (exists "date", not exists "list-id",
          anyof (header :contains "from" "example.org", header :contains "from" "example.com")) {
  fileinto "Personal";
}
