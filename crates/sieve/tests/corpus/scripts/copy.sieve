# RFC 3894: :copy keeps the implicit keep for redirect and fileinto.
require ["copy", "fileinto"];
redirect :copy "backup@example.net";
fileinto :copy "Copies";
