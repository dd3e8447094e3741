# RFC 5260 §6: :index needs require "index".
if header :index 1 :is "subject" "x" { keep; }
