# RFC 5435 §5-6: valid_notify_method and notify_method_capability.
require ["enotify", "fileinto"];
if allof (valid_notify_method "mailto:alice@example.com",
          notify_method_capability "mailto:alice@example.com" "online" "maybe") {
  fileinto "CanNotify";
}
