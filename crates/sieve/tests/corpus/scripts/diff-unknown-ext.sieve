# diff: unknown ext (a case of the differential test against Pigeonhole)
require ["spamtest"];
keep;
