# diff: included part (a case of the differential test against Pigeonhole)
require ["fileinto"];
if header :contains "subject" "update" { fileinto "Updates"; }
