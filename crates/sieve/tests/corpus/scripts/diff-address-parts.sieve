# diff: address parts (a case of the differential test against Pigeonhole)
require ["fileinto", "envelope", "subaddress"];
if address :domain :is "from" "example.com" { fileinto "Dotcom"; }
if address :localpart :matches ["to", "cc"] "user*" { fileinto "ToBob"; }
if envelope :detail "to" "lists" { fileinto "Detail"; }
if envelope :user "to" "user" { fileinto "User"; }
if address :all :is "from" "alice@example.org" { fileinto "Alice"; }
