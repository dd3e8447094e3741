# RFC 5490 §3.2: fileinto :create.
require ["fileinto", "mailbox"];
fileinto :create "New/Folder";
