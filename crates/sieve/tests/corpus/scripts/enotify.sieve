# RFC 5435 §3, RFC 5436: notify by mail with importance and a message.
require ["enotify", "variables"];
if header :matches "subject" "*" {
  notify :importance "1" :message "New mail: ${1}" "mailto:pager@example.net";
}
