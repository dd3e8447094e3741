# RFC 5228 §2.9: an unknown command is an error.
frobnicate "x";
