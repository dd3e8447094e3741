# diff: vacation (a case of the differential test against Pigeonhole)
require "vacation";
vacation :days 1 :subject "Away until Monday" "I am away; I will read your mail when I am back.";
