# RFC 5173 §5.2: :content "text" decodes transfer encoding and charset to UTF-8.
require ["body", "fileinto"];
if body :content "text" :contains ["présence", "München"] {
  fileinto "Decoded";
}
