# RFC 5228 §4.2: redirect cancels the implicit keep.
if address :is :domain "from" "example.org" {
  redirect "archive@example.net";
}
