# RFC 3894 §3: redirect :copy alone leaves the implicit keep in force.
require "copy";
redirect :copy "watcher@example.com";
