#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/<target>/seed-*: real protocol exchanges and
messages (RFC examples where the RFCs have them). The spool_journal seeds are written by the
spool's own writer instead: `cargo test -p postern-fuzz-targets --test seeds -- --ignored`.
Run from anywhere; it overwrites only seed-* files."""
import base64
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def b64(b):
    return base64.b64encode(b).decode()


CRLF = "\r\n"

# ---- SMTP command lines (RFC 5321 §4.1, RFC 3461, RFC 6531, RFC 3030, RFC 4954) ----------
smtp_lines = {
    "ehlo": "EHLO client.example.net",
    "helo-literal": "HELO [192.0.2.1]",
    "ehlo-v6": "EHLO [IPv6:2001:db8::1]",
    "mail-null": "MAIL FROM:<>",
    "mail-params": "MAIL FROM:<bob@remote.test> SIZE=1024 BODY=8BITMIME RET=HDRS ENVID=QQ314159",
    "mail-utf8": "MAIL FROM:<jörg@bücher.example> SMTPUTF8",
    "mail-quoted": 'MAIL FROM:<"john \\"q\\" doe"@example.org>',
    "mail-route": "MAIL FROM:<@a.test,@b.test:user@c.test>",
    "rcpt": "RCPT TO:<alice@example.org>",
    "rcpt-dsn": "RCPT TO:<alice@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice+2Bx@example.org",
    "rcpt-postmaster": "RCPT TO:<Postmaster>",
    "rcpt-literal": "RCPT TO:<root@[192.0.2.7]>",
    "data": "DATA",
    "bdat": "BDAT 1000",
    "bdat-last": "BDAT 0 LAST",
    "rset": "RSET",
    "vrfy": "VRFY alice",
    "expn": "EXPN staff@example.org",
    "help": "HELP",
    "noop": "NOOP hello",
    "quit": "QUIT",
    "starttls": "STARTTLS",
    "auth-plain": "AUTH PLAIN " + b64(b"\0alice@example.org\0secret"),
    "auth-login": "AUTH LOGIN",
    "auth-empty": "AUTH PLAIN =",
    "lower": "mail from: <a@b.c>",
}
for k, v in smtp_lines.items():
    put("smtp_command", k, v)

# ---- SMTP sessions: first octet = listener (0 MX, 1 submission, 2 submissions) + 4 loopback ----
MSG = ("From: Bob <bob@remote.test>\r\nTo: alice@example.org\r\nSubject: test\r\n"
       "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@remote.test>\r\n\r\n"
       "Hello Alice,\r\n..a line that began with a dot\r\n\r\nBob\r\n")
sessions = {
    "mx-data": bytes([0]) + (
        "EHLO mail.remote.test\r\nMAIL FROM:<bob@remote.test> SIZE=300\r\n"
        "RCPT TO:<alice@example.org>\r\nRCPT TO:<staff@example.org>\r\nDATA\r\n" + MSG + ".\r\nQUIT\r\n").encode(),
    "mx-relay-refused": bytes([0]) + (
        "HELO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<b@elsewhere.test>\r\nRCPT TO:<nobody@example.org>\r\n"
        "DATA\r\nRSET\r\nVRFY alice\r\nEXPN staff@example.org\r\nFOO\r\nQUIT\r\n").encode(),
    "mx-pipelined-bdat": bytes([0]) + (
        "EHLO c\r\nMAIL FROM:<> BODY=BINARYMIME\r\nRCPT TO:<alice@example.org>\r\nBDAT 12\r\nSubject: x\r\n"
        "BDAT 7 LAST\r\n\r\nbody\r\nQUIT\r\n").encode(),
    "mx-smuggling": bytes([0]) + (
        "EHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: x\r\n\r\n"
        "body\n.\nMAIL FROM:<evil@remote.test>\r\n.\r\nQUIT\r\n").encode(),
    "submission-plain": bytes([5]) + (
        "EHLO laptop\r\nAUTH PLAIN " + b64(b"\0alice@example.org\0secret") + "\r\n"
        "MAIL FROM:<alice@example.org>\r\nRCPT TO:<friend@remote.test> NOTIFY=NEVER\r\nDATA\r\n"
        "Subject: hi\r\n\r\n.\r\n.\r\nQUIT\r\n").encode(),
    "submission-login": bytes([1]) + (
        "EHLO laptop\r\nAUTH LOGIN\r\nSTARTTLS\r\nEHLO laptop\r\nAUTH LOGIN\r\n" + b64(b"alice@example.org") + "\r\n"
        + b64(b"secret") + "\r\nMAIL FROM:<alice@example.org> RET=FULL ENVID=a+2Bb\r\n"
        "RCPT TO:<x@remote.test> ORCPT=rfc822;x@remote.test\r\nBDAT 5 LAST\r\nhello").encode(),
    "submissions-bad-auth": bytes([2]) + (
        "EHLO x\r\nAUTH PLAIN " + b64(b"\0alice@example.org\0wrong") + "\r\nAUTH PLAIN\r\n*\r\n"
        "AUTH CRAM-MD5\r\nAUTH PLAIN !!!\r\nAUTH LOGIN " + b64(b"alice@example.org") + "\r\n" + b64(b"secret") + "\r\n"
        "MAIL FROM:<other@example.org>\r\nQUIT\r\n").encode(),
    "mx-too-big": bytes([4]) + (
        "EHLO c\r\nMAIL FROM:<a@remote.test> SIZE=999999\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\n"
        "DATA\r\n" + ("x" * 70 + "\r\n") * 70 + ".\r\nQUIT\r\n").encode(),
}
for k, v in sessions.items():
    put("smtp_session", k, v)

# ---- DATA decoder: first octet = chunk size / small limit, then the stream -------------------
put("smtp_data", "message", bytes([5]) + (MSG + ".\r\nQUIT\r\n").encode())
put("smtp_data", "bare-lf", bytes([16]) + b"a\n.b\n.\nc\r\n.\r\n")
put("smtp_data", "bare-cr", bytes([3]) + b"a\rb\r\r\n.\r\r\n.\r\n")
put("smtp_data", "empty", bytes([0]) + b".\r\n")
put("smtp_data", "dots", bytes([200]) + b"..\r\n...\r\n.x\r\n\r\n.\r\nrest")

# ---- IMAP commands (RFC 9051 §6 examples and extensions) ------------------------------------
APPEND_MSG = ("Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.example>\r\n"
              "Subject: afternoon meeting\r\nTo: mooch@owatagu.siam.edu.example\r\n"
              "Message-Id: <B27397-0100000@Blurdybloop.example>\r\nMIME-Version: 1.0\r\n"
              "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n")
imap = {
    "capability": "abcd CAPABILITY\r\n",
    "noop": "a002 NOOP\r\n",
    "logout": "A023 LOGOUT\r\n",
    "starttls": "a001 STARTTLS\r\n",
    "authenticate": "A001 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
    "authenticate-noir": "a AUTHENTICATE LOGIN\r\n",
    "login": "a001 LOGIN SMITH SESAME\r\n",
    "login-literal": "a001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man\r\n",
    "login-quoted": 'a LOGIN "alice@example.org" "p\\"w\\\\d"\r\n',
    "enable": "t2 ENABLE CONDSTORE UTF8=ACCEPT IMAP4rev2\r\n",
    "id": 'a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")\r\n',
    "select": "A142 SELECT INBOX\r\n",
    "select-qresync": "A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
    "select-condstore": "a SELECT &U,BTFw-/&ZeVnLIqe- (CONDSTORE)\r\n",
    "examine": "A932 EXAMINE blurdybloop\r\n",
    "create": "A003 CREATE owatagusiam/\r\n",
    "create-use": "t1 CREATE MySpecialArchive (USE (\\Archive))\r\n",
    "delete": "A683 DELETE blurdybloop\r\n",
    "rename": "A683 RENAME blurdybloop sarasoop\r\n",
    "subscribe": "A002 SUBSCRIBE #news.comp.mail.mime\r\n",
    "unsubscribe": "A002 UNSUBSCRIBE #news.comp.mail.mime\r\n",
    "list": 'A101 LIST "" ""\r\n',
    "list-pattern": "A202 LIST ~/Mail/ %\r\n",
    "list-extended": 'A04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "*" RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n',
    "list-multi": 'A05 LIST "" ("INBOX" "Drafts" %)\r\n',
    "lsub": 'A002 LSUB "#news." "comp.mail.*"\r\n',
    "namespace": "A001 NAMESPACE\r\n",
    "status": "A042 STATUS blurdybloop (UIDNEXT MESSAGES HIGHESTMODSEQ SIZE)\r\n",
    "append": "A003 APPEND saved-messages (\\Seen) {%d}\r\n%s\r\n" % (len(APPEND_MSG), APPEND_MSG),
    "append-date-nonsync": 'A004 APPEND INBOX (\\Flagged $Work) "05-Jan-2024 10:00:00 +0100" {%d+}\r\n%s\r\n' % (len(APPEND_MSG), APPEND_MSG),
    "append-literal8": "A005 APPEND INBOX ~{5}\r\nhe\x00lo\r\n",
    "multiappend": "A006 APPEND INBOX {3}\r\nabc {4+}\r\nwxyz\r\n",
    "idle": "A002 IDLE\r\n",
    "check": "FXXZ CHECK\r\n",
    "close": "A341 CLOSE\r\n",
    "unselect": "A342 UNSELECT\r\n",
    "expunge": "A202 EXPUNGE\r\n",
    "uid-expunge": "A003 UID EXPUNGE 3000:3002\r\n",
    "search": 'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
    "search-text": 'A283 SEARCH TEXT "string not in mailbox"\r\n',
    "search-charset-literal": "A284 SEARCH CHARSET UTF-8 TEXT {12}\r\n\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xa7\r\n",
    "search-complex": 'a UID SEARCH OR (UNSEEN LARGER 1000) HEADER "X-Mailer" "" MODSEQ 620162338 UID 1:*,$ NOT 3:5 SENTBEFORE 1-Jan-2024 KEYWORD $Junk\r\n',
    "search-save": "a SEARCH RETURN (SAVE) SUBJECT hello\r\n",
    "fetch": "A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
    "fetch-all": "a FETCH 1:* ALL\r\n",
    "fetch-sections": "a FETCH 1 (BODY.PEEK[1.2.MIME] BODY[TEXT]<0.100> BINARY[1] BINARY.SIZE[2] BODYSTRUCTURE ENVELOPE RFC822.SIZE INTERNALDATE UID MODSEQ)\r\n",
    "fetch-changedsince": "s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
    "uid-fetch": "A999 UID FETCH 4827313:4828442 FLAGS\r\n",
    "store": "A003 STORE 2:4 +FLAGS (\\Deleted)\r\n",
    "store-silent": "d105 UID STORE 7,5,9 -FLAGS.SILENT (UNCHANGEDSINCE 320162338) ($Junk \\Seen)\r\n",
    "copy": "A003 COPY 2:4 MEETING\r\n",
    "move": "a UID MOVE 42:69 foo\r\n",
    "sort": "A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n",
    "sort-display": "a UID SORT RETURN (ALL COUNT) (REVERSE DATE DISPLAYFROM) UTF-8 ALL\r\n",
    "thread": "A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n",
    "thread-refs": "A284 UID THREAD REFERENCES US-ASCII TEXT {3}\r\nfoo\r\n",
    "getquota": 'G0001 GETQUOTA "!partition/sda4"\r\n',
    "getquotaroot": "G0002 GETQUOTAROOT INBOX\r\n",
    "setquota": "S0000 SETQUOTA \"\" (STORAGE 512)\r\n",
    "pipelined": "a1 SELECT INBOX\r\na2 FETCH 1 FLAGS\r\na3 STORE 1 +FLAGS (\\Seen)\r\na4 LOGOUT\r\n",
    "bad": "a FOO\r\n* NOOP\r\na SELECT \"unterminated\r\na FETCH 0 FLAGS\r\n",
}
for k, v in imap.items():
    put("imap_command", k, v.encode("latin-1") if "\xe6" in v else v)

# ---- POP3: first octet = policy bits (1 plaintext ok, 2 STLS, 4 APOP), then lines -----------
pop3 = {
    "session": bytes([7]) + b"CAPA\r\nUSER mrose\r\nPASS tanstaaf\r\nSTAT\r\nLIST\r\nLIST 2\r\nRETR 1\r\nDELE 1\r\nTOP 2 10\r\nUIDL\r\nUIDL 3\r\nNOOP\r\nRSET\r\nQUIT\r\n",
    "apop": bytes([5]) + b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\nQUIT\r\n",
    "auth": bytes([3]) + b"AUTH\r\nAUTH PLAIN " + b64(b"\0alice@example.org\0secret").encode() + b"\r\nAUTH LOGIN\r\nSTLS\r\nUTF8\r\n",
    "plaintext-refused": bytes([2]) + b"USER alice\r\nPASS a b c\r\nAUTH PLAIN\r\nSTLS\r\n",
    "odd": bytes([1]) + b"user  alice  \nPASS  spaced pass \r\nLIST 99999999999\r\nTOP 1\r\nXTND\r\n\r\nRETR -1\r\n",
}
for k, v in pop3.items():
    put("pop3_command", k, v)

# ---- IMAP server responses, as the fetch client reads them (RFC 9051 §7, §9; RFC 2177) -----
# First octet: the literal limit is 2^(octet % 40).
imap_responses = {
    "login": "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n"
             "* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\nf1 OK Pre-login capabilities listed, post-login:\r\n"
             "f2 OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS ESEARCH] Logged in\r\n",
    "select": "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n"
              "* 172 EXISTS\r\n* 1 RECENT\r\n* OK [UNSEEN 12] Message 12 is first unseen\r\n* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
              "* OK [UIDNEXT 4392] Predicted next UID\r\nA142 OK [READ-WRITE] SELECT completed\r\n",
    "fetch": "* 12 FETCH (UID 4000 RFC822.SIZE 44 FLAGS (\\Seen $Junk) BODY[] {44}\r\nSubject: hi\r\nMessage-ID: <a@b>\r\n\r\nhello\r\n)\r\n"
             "* 13 FETCH (UID 4001 BODY[HEADER.FIELDS (MESSAGE-ID)] {20}\r\nMessage-ID: <c@d>\r\n\r\n BODY[]<0> NIL)\r\nf9 OK Fetch completed.\r\n",
    "search": "* SEARCH 2 84 882\r\n* SEARCH\r\n* ESEARCH (TAG \"f3\") UID ALL 1:3,5,17:19\r\nf3 OK done\r\n",
    "list": "* LIST (\\HasNoChildren) \".\" INBOX\r\n* LIST (\\Noselect \\HasChildren) \"/\" \"~peter/mail/&U,BTFw-/&ZeVnLIqe-\"\r\n"
            "* LIST () NIL \"Re&AOc-us\"\r\n* LIST (\\HasNoChildren) \".\" {5}\r\nA\"B\\C\r\nf4 OK List completed.\r\n",
    "idle": "+ idling\r\n* 173 EXISTS\r\n* 3 EXPUNGE\r\n* 4 FETCH (FLAGS (\\Seen))\r\nf5 OK Idle completed.\r\n* BYE [UNAVAILABLE] shutting down\r\n",
    "errors": "f6 NO [AUTHENTICATIONFAILED] Authentication failed.\r\nf7 BAD Error in IMAP command\r\n* 1 FETCH (BODY[] {99999999999}\r\n",
}
for k, v in imap_responses.items():
    put("imap_response", k, bytes([30]) + v.encode("utf-8"))

# ---- ManageSieve: one command, literals inlined (RFC 5804 §2 examples) ----------------------
managesieve = {
    "capability": "CAPABILITY\r\n",
    "authenticate-ir": 'AUTHENTICATE "PLAIN" "' + b64(b"\0alice@example.org\0secret") + '"\r\n',
    "authenticate": 'Authenticate "DIGEST-MD5"\r\n',
    "putscript": 'Putscript "foo" {31+}\r\n#comment\r\nInvalidSieveCommand\r\n\r\n',
    "putscript-sync": 'PUTSCRIPT {4}\r\nmain {5}\r\nkeep;\r\n',
    "havespace": 'HAVESPACE "myscript" 999999\r\n',
    "setactive-empty": 'SETACTIVE ""\r\n',
    "rename": 'RENAMESCRIPT "old" "new"\r\n',
    "noop-tag": 'NOOP "STARTTLS-SYNC-42"\r\n',
    "checkscript": 'CHECKSCRIPT "require \\"fileinto\\"; fileinto \\"x\\";"\r\n',
    "sasl-response": '{8+}\r\nAGEAYgBj\r\n',
}
for k, v in managesieve.items():
    put("managesieve_command", k, v)

# ---- SASL: first octet = mechanism index (0 PLAIN, 1 LOGIN) + 0x80 initial response ---------
sasl = {
    "plain-ir": bytes([0x80]) + b"\0alice@example.org\0secret",
    "plain-authzid": bytes([0x80]) + b"alice@example.org\0Alice@Example.ORG\0secret",
    "plain-other-authzid": bytes([0x80]) + b"bob@example.org\0alice@example.org\0secret",
    "plain-challenge": bytes([0]) + b"\0alice@example.org\0wrong",
    "plain-malformed": bytes([0]) + b"alice@example.org\0secret",
    "login": bytes([1]) + b"alice@example.org\nsecret",
    "login-ir": bytes([0x81]) + b"alice@example.org\nsecret\nextra",
    "login-fail": bytes([1]) + b"fail@example.org\nx",
    "login-empty": bytes([1]) + b"\n",
}
for k, v in sasl.items():
    put("sasl", k, v)

# ---- MIME messages (RFC 2045-2047, RFC 2231, RFC 5322) --------------------------------------
MULTI = (
    "From: =?utf-8?q?J=C3=B6rg?= <joerg@x.test>\r\nTo: \"Doe, John\" <j@x.org>, Group: a@x.org, B <b@x.org>;, c@x.org\r\n"
    "Cc: undisclosed-recipients:;\r\nSubject: =?iso-8859-1?q?caf=E9?= =?utf-8?b?w6k=?= and more\r\n"
    "Date: Tue, 2 Jan 2024 00:30:00 +0100\r\nMessage-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\nReferences: <0@x> <1@x>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9llo=\r\n world\r\n"
    "--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n"
    "--YY\r\n\r\nplain\r\n--YY\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n<b>caf\xe9</b>\r\n--YY--\r\n\r\n"
    "--XX\r\nContent-Type: application/pdf; name*0*=UTF-8''%E2%82%AC%20a; name*1*=%20b; name*2=\".pdf\"\r\n"
    "Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC.pdf\r\nContent-Language: en, de\r\n"
    "Content-Transfer-Encoding: base64\r\nContent-ID: <p1@x>\r\nContent-Description: a file\r\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\n"
    "aGVsbG8gd29ybGQ=\r\n--XX--\r\nepilogue\r\n")
mime = {
    "multipart": MULTI.encode("latin-1"),
    "simple": APPEND_MSG.encode(),
    "no-header": b"\r\njust a body\r\n",
    "bare-lf": b"Subject: x\nContent-Type: text/plain\n\nbody\n",
    "nested-rfc822": (
        "Content-Type: message/rfc822\r\n\r\nContent-Type: message/global\r\n\r\nFrom: a@b\r\n"
        "Content-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\nSubject: in digest\r\n\r\nx\r\n--D--\r\n").encode(),
    "broken": b"Content-Type: multipart/mixed; boundary=\r\nTo: <@route:a@b>, \"unterminated\r\n\r\n--\r\n--\r\n",
    "encodings": (
        "Subject: =?utf-8?B?8J+YgA==?= =?UTF-8?Q?a_b=3F?=\r\nContent-Type: text/plain; charset=\"koi8-r\"; format=flowed\r\n"
        "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n").encode(),
}
for k, v in mime.items():
    put("imap_mime", k, v)

# ---- SEARCH/SORT/THREAD: a search string line, then messages separated by two NULs ----------
threads = [
    "From: Alice <alice@x>\r\nSubject: Hello\r\nMessage-ID: <1@x>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nfirst\r\n",
    "From: Bob <bob@y>\r\nSubject: Re: Hello\r\nMessage-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\nDate: Mon, 1 Jan 2024 11:00:00 +0000\r\n\r\nsecond\r\n",
    "From: =?utf-8?q?Carl_=C3=85?= <carl@z>\r\nSubject: [list] Fwd: Re: hello (fwd)\r\nMessage-ID: <3@x>\r\nReferences: <1@x> <2@x>\r\n\r\nthird\r\n",
    "Subject: Re: Hello\r\nMessage-ID: <4@x>\r\nReferences: <4@x> <missing@x> <2@x>\r\n\r\nloop\r\n",
    "Subject: [fwd: Other]\r\nMessage-ID: <2@x>\r\n\r\nduplicate id\r\n",
]
put("imap_search", "threads", ("hello\n" + "\0\0".join(threads)).encode())
put("imap_search", "multipart", b"CAF\xc3\x89\n" + MULTI.encode("latin-1"))
put("imap_search", "empty-needle", b"\n" + APPEND_MSG.encode())
put("imap_search", "encoded-name", "zoë\nTo: \"=?utf-8?q?Zo=C3=AB?=\" <z@x>\r\nCc: =?x-unknown?q?abc?= <c@x>\r\n\r\nbody\r\n".encode())

# ---- Addresses -------------------------------------------------------------------------------
addresses = {
    "plain": "John.Doe@Example.COM",
    "idna": "info@Bücher.Example",
    "alabel": "info@xn--bcher-kva.example",
    "v4": "root@[192.0.2.1]",
    "v6": "root@[IPv6:2001:DB8::1]",
    "detail": "user+tag@example.org",
    "percent": "a%b!c@example.org",
    "at-in-local": "a@b@example.org",
    "unicode-local": "Ünïcödé@exämple.org",
    "long": ("x" * 64) + "@" + ".".join(["a" * 63] * 4),
    "bad": "a@-bad-.example",
}
for k, v in addresses.items():
    put("address", k, v)

# ---- Maildir names and small files ------------------------------------------------------------
maildir = {
    "name": "1700000000.M12345P678Q9.host.example,S=1234,W=1260,U=42:2,FRS",
    "name-keywords": "1700000000.M1P2.host,S=10,U=7,K=abc-DEF_1:2,DPTabdz",
    "name-dovecot": "1035478339.27041_118.foo.org,S=1000,W=1030:2,S",
    "name-experimental": "1700000000.M1P2.host:1,xyz",
    "name-new": "1700000000.M1P2.host,U=0,W=,K=",
    "folder": ".Archive.2024",
    "folder-encoded": ".Entw%C3%BCrfe.a%2Eb",
    "folder-inbox": ".INBOX",
    "mailbox": "INBOX/Sub folder/Ünï",
    "uidvalidity": "1700000000\nuidnext 43\nhighestmodseq 120\nspecial-use \\Sent\n",
    "keywords": "0 $Junk\n1 work\n25 last\n26 toofar\n3 $label1\nx bad\n",
}
for k, v in maildir.items():
    put("maildir_name", k, v)

# ---- aliases(5) files (postern newaliases) ----------------------------------------------------
aliases_files = {
    "debian": "# See man 5 aliases for format\npostmaster:    root\n",
    "full": "# comment\n\npostmaster: root\nstaff: alice, bob@example.net,\n\t\"john smith\"@example.net\n"
            "  # inside\n  , carol\nlog: |/usr/bin/logger -t mail, \"|/usr/local/bin/filter --x, y\"\n"
            "archive: /var/mail/archive\nteam: :include:/etc/mail/team.list\n\"Quoted.Name\": dave\n",
    "errors": "  orphan\na: b\nnocolon here\nb:\na: again\nc: \"unbalanced\nd: |\ne: :include:relative\n",
    "include": "# the team\nalice\nbob, carol\n|/bin/true\n",
}
for k, v in aliases_files.items():
    put("aliases_file", k, v)

# ---- DMARC aggregate reports (RFC 7489 §7.2.1.1, Appendix C): XML, gzip, a message ---------
dmarc_xml = """<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <version>1.0</version>
  <report_metadata>
    <org_name>mx.example.net</org_name>
    <email>postmaster@example.net</email>
    <report_id>1700000000.example.org.1</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>example.org</domain><adkim>r</adkim><aspf>r</aspf>
    <p>reject</p><sp>quarantine</sp><pct>100</pct><fo>0</fo>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.1</source_ip><count>3</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf>
        <reason><type>forwarded</type><comment>list &amp; co</comment></reason>
      </policy_evaluated>
    </row>
    <identifiers><envelope_from>lists.example.com</envelope_from><header_from>example.org</header_from></identifiers>
    <auth_results>
      <dkim><domain>example.org</domain><selector>s1</selector><result>pass</result></dkim>
      <spf><domain>lists.example.com</domain><scope>mfrom</scope><result>softfail</result></spf>
    </auth_results>
  </record>
  <record>
    <row><source_ip>2001:db8::7</source_ip><count>1</count>
      <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><envelope_from>example.org</envelope_from><header_from>example.org</header_from></identifiers>
    <auth_results><spf><domain>example.org</domain><scope>mfrom</scope><result>fail</result></spf></auth_results>
  </record>
</feedback>
"""
put("dmarc_report", "xml", dmarc_xml)
import gzip as _gzip
dmarc_gz = _gzip.compress(dmarc_xml.encode(), mtime=0)
put("dmarc_report", "xml-gz", dmarc_gz)
put("dmarc_report", "message", CRLF.join([
    "From: postmaster@example.net",
    "To: dmarc@example.org",
    "Subject: Report Domain: example.org Submitter: example.net Report-ID: <1700000000.example.org.1>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="b"',
    "",
    "--b",
    "Content-Type: text/plain",
    "",
    "A DMARC aggregate report.",
    "--b",
    'Content-Type: application/gzip; name="example.net!example.org!1700000000!1700086399.xml.gz"',
    "Content-Transfer-Encoding: base64",
    'Content-Disposition: attachment; filename="example.net!example.org!1700000000!1700086399.xml.gz"',
    "",
    b64(dmarc_gz),
    "--b--",
    "",
]))
