# RFC 5231 §4.1: :count on addresses counts every address in the fields.
require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if address :count "gt" :comparator "i;ascii-numeric" ["to", "cc"] "2" {
  fileinto "Crowd";
}
