# RFC 5230 §4.7-4.8: :mime reason and :from.
require "vacation";
vacation :from "User <user@example.net>" :mime text:
Content-Type: text/plain; charset=utf-8

Je suis absent jusqu'à lundi.
.
;
