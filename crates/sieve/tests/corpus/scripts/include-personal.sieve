# RFC 6609 §3.2: include a personal script (lib-flagger.sieve in this directory) :once.
require ["include", "fileinto"];
include :personal :once "lib-flagger";
include :personal :once "lib-flagger";
fileinto "Included";
