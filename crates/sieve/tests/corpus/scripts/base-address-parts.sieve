# RFC 5228 §5.1, §2.7.4: address parts :localpart, :domain, :all on several headers.
require "fileinto";
if address :localpart :is ["from", "sender"] "alice" {
  fileinto "Alice";
} elsif address :domain :is "to" "lists.example.org" {
  fileinto "Lists";
} elsif address :all :is "cc" "user@example.net" {
  fileinto "CcMe";
}
