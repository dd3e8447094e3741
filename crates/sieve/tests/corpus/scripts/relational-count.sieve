# RFC 5231 §4.1: :count counts header fields (Received hops).
require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :count "ge" :comparator "i;ascii-numeric" "received" "3" {
  fileinto "ManyHops";
}
