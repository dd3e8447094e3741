# RFC 7352 §3: duplicate, by Message-ID (first delivery is not a duplicate).
require ["duplicate", "fileinto"];
if duplicate {
  discard;
} else {
  fileinto "FirstSeen";
}
