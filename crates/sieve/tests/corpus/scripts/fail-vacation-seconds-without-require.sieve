# RFC 6131 §2: :seconds needs require "vacation-seconds".
require "vacation";
vacation :seconds 60 "Back soon.";
