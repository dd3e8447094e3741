# diff: relational (a case of the differential test against Pigeonhole)
require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "5" { fileinto "Junk"; }
if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] "2" { fileinto "Many"; }
