# diff: bad require (a case of the differential test against Pigeonhole)
if true { fileinto "Nope"; }
