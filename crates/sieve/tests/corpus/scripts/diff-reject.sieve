# diff: reject (a case of the differential test against Pigeonhole)
require "reject";
if exists "list-id" { reject text:
Lists are not welcome here.
Please stop.
.
; }
