# RFC 5173 §5.1: :raw matches the undecoded body (quoted-printable soft breaks and all).
require ["body", "fileinto"];
if body :raw :contains "pr=E9sen=" {
  fileinto "RawQP";
} elsif body :raw :contains "R3LDvMOfZSBhdXMgTcO8bmNoZW4h" {
  fileinto "RawB64";
}
