# diff: redirect copy (a case of the differential test against Pigeonhole)
require "copy";
if header :contains "from" "alice" { redirect :copy "archive@example.org"; }
if header :contains "from" "carol" { redirect "carol-box@example.org"; }
