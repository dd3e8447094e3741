# RFC 5228 §4.3, §2.10.2: an explicit keep after discard still keeps.
discard;
keep;
