require ["include", "fileinto"];
include :personal "diff-included-part";
include :once "diff-included-part";
fileinto "After";
