# RFC 5228 §4.3, §4.5: explicit keep, and discard of obvious spam.
if header :contains "subject" "WON" {
  discard;
  stop;
}
keep;
