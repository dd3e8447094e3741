# RFC 5232 §5: :flags on fileinto, without touching the internal variable.
require ["imap4flags", "fileinto"];
fileinto :flags ["\\Seen", "$Filed"] "Filed";
