# RFC 5230 §4: vacation with :days, :subject and :addresses.
require "vacation";
vacation :days 7 :subject "Out of office" :addresses ["user@example.net", "u@example.net"]
  "I am away until Monday. Your mail will be read when I return.";
