# RFC 5260 §4: the date of a Received field is after its last semicolon.
require ["date", "index", "fileinto"];
if date :index 1 :last :zone "+0000" :is "received" "hour" "09" {
  fileinto "FirstHopNine";
}
