# RFC 5173 §5.2: :content "text/html" matches the decoded HTML, tags included.
require ["body", "fileinto"];
if body :content "text/html" :contains "<b>week</b>" {
  fileinto "Html";
}
