# diff: vacation from (a case of the differential test against Pigeonhole)
require ["vacation", "fileinto"];
fileinto "Seen";
vacation :from "user@example.net" :addresses ["user@example.net", "robert@example.net"] text:
Away.
.
;
