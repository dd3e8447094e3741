# RFC 5293 §7: Received cannot be deleted; the script goes on.
require ["editheader", "fileinto"];
deleteheader "received";
if exists "received" {
  fileinto "StillReceived";
}
