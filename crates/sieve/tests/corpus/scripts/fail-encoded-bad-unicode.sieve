# RFC 5228 §2.4.2.4: a surrogate code point in ${unicode:} is an error.
require "encoded-character";
if header :contains "subject" "${unicode:D800}" { keep; }
