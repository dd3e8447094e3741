# RFC 5429 §2.3: reject together with fileinto is an error at run time (implicit keep then).
require ["reject", "fileinto"];
fileinto "Kept";
reject "No thanks.";
