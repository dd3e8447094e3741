# RFC 5230 §4: vacation with every default (subject "Auto: ...", period, handle).
require "vacation";
vacation "Away this week.";
