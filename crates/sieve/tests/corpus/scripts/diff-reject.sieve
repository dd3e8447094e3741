require "reject";
if exists "list-id" { reject text:
Lists are not welcome here.
Please stop.
.
; }
