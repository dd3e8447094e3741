require "imap4flags";
setflag "\\Seen";
addflag "$Reviewed";
removeflag "\\Seen";
