# diff: implicit keep flags (a case of the differential test against Pigeonhole)
require "imap4flags";
setflag "\\Seen";
addflag "$Reviewed";
removeflag "\\Seen";
