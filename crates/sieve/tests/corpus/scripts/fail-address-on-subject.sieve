# RFC 5228 §5.1: the address test only takes header fields that hold addresses.
if address :is "subject" "x@example.com" { keep; }
