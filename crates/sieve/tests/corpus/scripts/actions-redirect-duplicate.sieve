# RFC 5228 §4.2: redirecting twice to the same address sends once.
redirect "same@example.com";
redirect "same@example.com";
