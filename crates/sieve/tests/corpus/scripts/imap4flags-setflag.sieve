# RFC 5232 §3.1-3.2: setflag and addflag change the flags of the implicit keep.
require "imap4flags";
if header :contains "from" "boss" {
  setflag "\\Flagged";
  addflag "$Important";
}
