# RFC 5232 §3: the flag commands on a named variable, used by :flags (§5).
require ["imap4flags", "variables", "fileinto"];
setflag "myflags" "\\Seen";
addflag "myflags" ["$Work", "\\Seen"];
fileinto :flags "${myflags}" "Work";
