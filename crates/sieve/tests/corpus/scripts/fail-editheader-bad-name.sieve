# RFC 5293 §4: a field name with a space is an error.
require "editheader";
addheader "X Bad Name" "v";
