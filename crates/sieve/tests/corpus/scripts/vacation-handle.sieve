# RFC 5230 §4.2: an explicit :handle and :days 1.
require "vacation";
vacation :days 1 :handle "winter-break" :subject "Winter break" "Closed until January.";
