# RFC 5228 §3.3, §5.6, §5.11: stop ends the script; true and false.
if false {
  discard;
}
if true {
  stop;
}
discard;
