# RFC 5435 §7: the :encodeurl variable modifier in a mailto URI.
require ["enotify", "variables"];
if header :matches "subject" "*" {
  set :encodeurl "s" "${1}";
  notify "mailto:pager@example.net?subject=${s}";
}
