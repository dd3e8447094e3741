# diff: variables (a case of the differential test against Pigeonhole)
require ["fileinto", "variables"];
if header :matches "subject" "[*] *" {
    set :lower "list" "${1}";
    fileinto "lists.${list}";
}
set "who" "${0}";
if address :localpart :matches "from" "*" { set :upperfirst "name" "${1}"; fileinto "from-${name}"; }
