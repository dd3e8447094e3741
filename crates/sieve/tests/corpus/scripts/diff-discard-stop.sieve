# diff: discard stop (a case of the differential test against Pigeonhole)
if header :is "precedence" ["bulk", "junk"] { discard; stop; }
if size :over 300 { discard; }
keep;
