# RFC 7352 §3.2: duplicate :uniqueid built from a variable.
require ["duplicate", "variables", "fileinto"];
if header :matches "subject" "*" {
  if duplicate :uniqueid "${1}" {
    fileinto "Repeat";
  }
}
