# diff: reject keep conflict (a case of the differential test against Pigeonhole)
require "reject";
keep;
reject "not wanted";
