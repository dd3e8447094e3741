# RFC 5228 §4.2: implementations limit redirects; five is over Pigeonhole's default of four.
redirect "a@example.com";
redirect "b@example.com";
redirect "c@example.com";
redirect "d@example.com";
redirect "e@example.com";
