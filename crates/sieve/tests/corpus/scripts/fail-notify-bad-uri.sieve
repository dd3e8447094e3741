# RFC 5435 §3.3 / RFC 5436: a literal method URI that is not valid is an error.
require "enotify";
notify "mailto:alice@example.com?subject=%zz";
