if true { fileinto "Nope"; }
