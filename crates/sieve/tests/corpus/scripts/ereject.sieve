# RFC 5429 §2.1: ereject, refused in the SMTP dialogue when possible.
require "ereject";
if size :over 100K {
  ereject "Message too large for this mailbox.";
}
