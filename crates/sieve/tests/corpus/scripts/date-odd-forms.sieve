# RFC 5260 §4.2 on RFC 5322 §3.3/§4.3 corner cases: leap second, -0000, odd zones, 2-digit years.
require ["date", "variables", "fileinto"];
if date :originalzone :matches "date" "time" "*" { set "t" "${1}"; }
if date :originalzone :matches "date" "zone" "*" { set "z" "${1}"; }
if date :originalzone :matches "x-sent" "iso8601" "*" { set "s" "${1}"; }
if date :zone "-1200" :matches "x-old" "std11" "*" { set "o" "${1}"; }
fileinto "T${t}.Z${z}.S${s}.O${o}";
