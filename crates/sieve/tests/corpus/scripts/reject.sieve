# RFC 5429 §2.2: reject refuses the message with a reason.
require "reject";
if header :contains "x-spam-flag" "YES" {
  reject "Spam is not accepted here.";
}
