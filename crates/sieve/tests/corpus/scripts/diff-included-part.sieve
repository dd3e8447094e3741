require ["fileinto"];
if header :contains "subject" "update" { fileinto "Updates"; }
