# diff: include (a case of the differential test against Pigeonhole)
require ["include", "fileinto"];
include :personal "diff-included-part";
include :once "diff-included-part";
fileinto "After";
