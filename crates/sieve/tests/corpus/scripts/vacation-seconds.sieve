# RFC 6131 §2: vacation :seconds.
require "vacation-seconds";
vacation :seconds 3600 :handle "hourly" "Back in an hour.";
