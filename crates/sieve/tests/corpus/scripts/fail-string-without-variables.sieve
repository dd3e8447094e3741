# RFC 5229 §5: the string test needs require "variables".
if string :is "a" "a" { keep; }
