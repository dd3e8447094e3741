require ["spamtest"];
keep;
