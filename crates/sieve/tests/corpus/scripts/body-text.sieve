# RFC 5173 §5.3: :text (the default) matches what a reader sees.
require ["body", "fileinto"];
if body :contains "garden tools" {
  fileinto "Garden";
}
