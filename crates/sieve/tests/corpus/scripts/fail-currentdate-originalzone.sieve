# RFC 5260 §5: currentdate has no :originalzone.
require "date";
if currentdate :originalzone :is "year" "2026" { keep; }
