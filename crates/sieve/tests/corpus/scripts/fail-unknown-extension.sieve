# RFC 5228 §3.2: requiring an unknown extension is an error.
require "x-no-such-extension";
keep;
