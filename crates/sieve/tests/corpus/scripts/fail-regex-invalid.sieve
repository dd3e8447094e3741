# draft-ietf-sieve-regex §3: an invalid literal regular expression is an error.
require "regex";
if header :regex "subject" "([a-z" { keep; }
