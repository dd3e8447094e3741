# diff: ereject (a case of the differential test against Pigeonhole)
require "ereject";
ereject "no";
