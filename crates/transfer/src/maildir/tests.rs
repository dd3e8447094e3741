use super::*;

fn put(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

fn mkmaildir(d: &Path) {
    for s in ["cur", "new", "tmp"] {
        fs::create_dir_all(d.join(s)).unwrap();
    }
}

#[test]
fn info_letters_and_dovecot_keywords() {
    let letters = parse_keywords("0 $Junk\n1 Work\n2 bad(word\n27 far\n");
    assert_eq!(letters.len(), 2);
    let f = parse_info(Some("2,DFPRSTab"), &letters);
    assert!(f.draft && f.flagged && f.answered && f.seen && f.deleted);
    assert_eq!(f.keywords, ["$Forwarded", "$Junk", "Work"]);
    assert_eq!(parse_info(Some("1,S"), &letters), MessageFlags::default());
    assert_eq!(parse_info(None, &letters), MessageFlags::default());
    // A letter with no keyword behind it is ignored.
    assert!(parse_info(Some("2,z"), &letters).keywords.is_empty());
}

#[test]
fn uidlist_versions() {
    let v3 = "3 V1700000000 N5 G0f1e2d3c4b5a69788796a5b4c3d2e1f0\n\
1 :1700000001.M1P1.host,S=10,W=12\n\
3 W120 G12345 :1700000002.M2P1.host,S=10,W=12:2,S\n\
bogus line\n";
    let u = parse_uidlist(v3).unwrap();
    assert_eq!((u.uidvalidity, u.uidnext), (1_700_000_000, 5));
    assert_eq!(u.uids["1700000001.M1P1.host,S=10,W=12"], 1);
    assert_eq!(u.uids["1700000002.M2P1.host,S=10,W=12"], 3);
    let v1 = "1 1234 3\n1 a.b.c\n2 d.e.f:2,S\n";
    let u = parse_uidlist(v1).unwrap();
    assert_eq!((u.uidvalidity, u.uidnext, u.uids["d.e.f"]), (1234, 3, 2));
    assert!(parse_uidlist("2 x y\n").is_none());
    assert!(parse_uidlist("3 N5\n").is_none());
}

#[test]
fn modified_utf7_names() {
    for (plain, enc) in [
        ("Entwürfe", "Entw&APw-rfe"),
        ("R&D", "R&-D"),
        ("日本語", "&ZeVnLIqe-"),
        ("a.b", "a&AC4-b"),
        ("plain", "plain"),
    ] {
        assert_eq!(encode_mutf7(plain), enc);
        assert_eq!(decode_mutf7(enc), plain);
    }
    assert_eq!(decode_mutf7("bad&***-x"), "bad&***-x");
    assert_eq!(folder_dir("INBOX"), None);
    assert_eq!(folder_dir("Archiv/2024").as_deref(), Some(".Archiv.2024"));
}

#[test]
fn scans_maildirplusplus_and_mutt_folders() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    mkmaildir(root);
    put(
        &root.join("new/1700000003.M3P1.host"),
        b"Subject: new\n\nx\n",
    );
    put(
        &root.join("cur/1700000001.M1P1.host,S=17:2,S"),
        b"Subject: one\n\nx\n",
    );
    put(
        &root.join("cur/1700000002.M2P1.host:2,RFa"),
        b"Subject: two\n\nx\n",
    );
    put(&root.join("cur/.hidden"), b"ignored");
    put(&root.join("dovecot-keywords"), b"0 Work\n");
    put(
        &root.join("dovecot-uidlist"),
        b"3 V42 N10\n7 :1700000001.M1P1.host,S=17\n9 :1700000002.M2P1.host\n",
    );
    mkmaildir(&root.join(".Sent"));
    put(&root.join(".Sent/cur/1.M1.h:2,S"), b"sent\n");
    mkmaildir(&root.join(".Lists.Rust"));
    mkmaildir(&root.join(".Entw&APw-rfe"));
    // mutt-style: plain directories.
    mkmaildir(&root.join("archive"));
    mkmaildir(&root.join("archive/2024"));
    put(&root.join("archive/2024/new/5.M5.h"), b"old\n");
    fs::create_dir_all(root.join("notmail/deeper")).unwrap();

    let folders = scan(root).unwrap();
    let names: Vec<_> = folders.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "INBOX",
            "Entwürfe",
            "Lists/Rust",
            "Sent",
            "archive",
            "archive/2024"
        ]
    );
    let inbox = &folders[0];
    assert_eq!((inbox.uidvalidity, inbox.uidnext), (Some(42), Some(10)));
    let uids: Vec<_> = inbox.entries.iter().map(|e| e.uid).collect();
    assert_eq!(uids, [Some(7), Some(9), None]);
    assert!(inbox.entries[0].flags.seen && !inbox.entries[0].flags.recent);
    let two = &inbox.entries[1].flags;
    assert!(two.answered && two.flagged && !two.seen);
    assert_eq!(two.keywords, ["Work"]);
    assert!(inbox.entries[2].flags.recent);
    let m = inbox.entries[0].read().unwrap();
    assert_eq!(m.data, b"Subject: one\n\nx\n");
    assert_eq!(m.uid, Some(7));
    assert!(m.internal_date.is_some());
    assert_eq!(folders[5].entries.len(), 1);
    assert!(scan(&root.join("notmail")).is_err());
}

#[test]
fn written_tree_reads_back() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("out");
    let w = MaildirWriter::create(&root, "host/x").unwrap();
    let mut inbox = w.folder("INBOX", 77).unwrap();
    let mut kws: Vec<String> = (0..27).map(|i| format!("k{i}")).collect();
    kws.push("$Forwarded".into());
    let msgs = [
        Message {
            data: b"Subject: a\r\n\r\nbody\r\n".to_vec(),
            flags: MessageFlags {
                seen: true,
                answered: true,
                flagged: true,
                deleted: true,
                draft: true,
                recent: false,
                keywords: kws,
            },
            internal_date: Some(1_000_000_000),
            sender: None,
            uid: Some(3),
        },
        Message {
            data: b"Subject: b\n\nnew one\n".to_vec(),
            flags: MessageFlags {
                recent: true,
                ..MessageFlags::default()
            },
            internal_date: Some(1_100_000_000),
            sender: None,
            uid: Some(8),
        },
    ];
    for m in &msgs {
        inbox.write(m).unwrap();
    }
    let dropped = inbox.finish(12).unwrap();
    assert_eq!(dropped, ["k26"]);
    let mut sub = w.folder("Work/Entwürfe", 5).unwrap();
    sub.write(&Message {
        data: b"x\n".to_vec(),
        uid: Some(1),
        ..Message::default()
    })
    .unwrap();
    sub.finish(1).unwrap();
    crate::sync_filesystem(&root).unwrap();

    let folders = scan(&root).unwrap();
    assert_eq!(folders.len(), 2);
    assert_eq!(folders[1].name, "Work/Entwürfe");
    assert_eq!(folders[1].uidvalidity, Some(5));
    assert_eq!(folders[1].uidnext, Some(2));
    let inbox = &folders[0];
    assert_eq!((inbox.uidvalidity, inbox.uidnext), (Some(77), Some(12)));
    for (e, m) in inbox.entries.iter().zip(&msgs) {
        let back = e.read().unwrap();
        assert_eq!(back.data, m.data);
        assert_eq!(back.uid, m.uid);
        assert_eq!(back.internal_date, m.internal_date);
        let mut want = m.flags.clone();
        want.keywords.retain(|k| k != "k26");
        let mut got = back.flags.clone();
        got.keywords.sort();
        want.keywords.sort();
        assert_eq!(got, want);
    }
    assert!(MaildirWriter::create(&root, "h").is_err(), "not empty");
}
