# RFC 5232 §3: the internal flags go with the implicit keep, not with earlier fileinto.
require ["imap4flags", "fileinto", "copy"];
fileinto :copy "Before";
addflag "\\Flagged";
