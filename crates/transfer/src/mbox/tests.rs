use super::*;

const MAX: u64 = 1 << 20;

fn read_all(file: &[u8], variant: Variant) -> Vec<Item> {
    let mut r = MboxReader::new(file, variant, MAX);
    let mut out = Vec::new();
    while let Some(item) = r.next() {
        out.push(item.unwrap());
    }
    out
}

fn messages(file: &[u8], variant: Variant) -> Vec<Message> {
    read_all(file, variant)
        .into_iter()
        .map(|i| match i {
            Item::Message { message, .. } => message,
            Item::Skipped { reason, .. } => panic!("skipped: {reason}"),
        })
        .collect()
}

const TWO: &[u8] = b"From alice@example.org Thu Dec  3 11:39:31 2026\n\
Subject: one\n\
\n\
>From the start\n\
>>From quoted twice\n\
From here, no date\n\
\n\
From MAILER-DAEMON Fri Dec  4 00:00:00 2026\n\
Subject: two\n\
\n\
body\n\
\n";

#[test]
fn mboxrd_unquotes_one_level() {
    let m = messages(TWO, Variant::Mboxrd);
    assert_eq!(m.len(), 2);
    assert_eq!(
        m[0].data,
        b"Subject: one\n\nFrom the start\n>From quoted twice\nFrom here, no date\n"
    );
    assert_eq!(m[0].sender.as_deref(), Some("alice@example.org"));
    assert_eq!(m[0].internal_date, Some(1_796_297_971));
    assert_eq!(m[1].data, b"Subject: two\n\nbody\n");
    assert_eq!(m[1].sender.as_deref(), Some("MAILER-DAEMON"));
    assert!(m[1].flags.recent);
}

#[test]
fn mboxo_unquotes_only_single_gt() {
    let m = messages(TWO, Variant::Mboxo);
    assert_eq!(
        m[0].data,
        b"Subject: one\n\nFrom the start\n>>From quoted twice\nFrom here, no date\n"
    );
}

#[test]
fn auto_reads_like_mboxrd_without_content_length() {
    assert_eq!(messages(TWO, Variant::Auto), messages(TWO, Variant::Mboxrd));
}

/// mboxcl2: the Content-Length covers an unquoted From line with a date.
const CL2: &[u8] = b"From a@b Thu Dec  3 11:39:31 2026\n\
Subject: cl2\n\
Content-Length: 43\n\
\n\
From x Thu Dec  3 11:39:31 2026\n\
>From kept\n\
\n\
From b@c Thu Dec  3 11:39:32 2026\n\
Subject: next\n\
Content-Length: 5\n\
\n\
body\n";

#[test]
fn mboxcl2_cuts_by_length_and_keeps_quotes() {
    let m = messages(CL2, Variant::Mboxcl2);
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(
        m[0].data,
        b"Subject: cl2\n\nFrom x Thu Dec  3 11:39:31 2026\n>From kept\n"
    );
    assert_eq!(m[1].data, b"Subject: next\n\nbody\n");
    // Auto finds the same cuts and, as for mboxcl2, leaves the quotes alone.
    assert_eq!(messages(CL2, Variant::Auto), m);
    // mboxrd, which ignores Content-Length, splits at the dated From line.
    assert_eq!(messages(CL2, Variant::Mboxrd).len(), 3);
}

#[test]
fn mboxcl_unquotes_like_mboxo() {
    let file = b"From a@b Thu Dec  3 11:39:31 2026\n\
Content-Length: 26\n\
\n\
>From me\n\
>>From you\n\
hello\n\
\n";
    let m = messages(file, Variant::Mboxcl);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].data, b"\nFrom me\n>>From you\nhello\n");
}

#[test]
fn wrong_content_length_falls_back_to_from_lines() {
    let file = b"From a@b Thu Dec  3 11:39:31 2026\n\
Content-Length: 3\n\
Subject: wrong length\n\
\n\
line one\n\
line two\n\
\n\
From a@b Thu Dec  3 11:39:31 2026\n\
Subject: 2\n\
\n\
x\n";
    let m = messages(file, Variant::Mboxcl);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].data, b"Subject: wrong length\n\nline one\nline two\n");
}

#[test]
fn status_headers_become_flags_and_are_removed() {
    let file = b"From a@b Thu Dec  3 11:39:31 2026\n\
Subject: flags\n\
Status: RO\n\
X-Status: AFTD\n\
X-Keywords: $Label1 Work,Home\n\x20Folded\n\
Keywords: Project X, urgent\n\
X-UID: 7\n\
\n\
body\n\
\n\
From a@b Thu Dec  3 11:39:31 2026\n\
Status: O\n\
\n\
old, unread\n";
    let m = messages(file, Variant::Auto);
    let f = &m[0].flags;
    assert!(f.seen && f.answered && f.flagged && f.draft && f.deleted && !f.recent);
    assert_eq!(f.keywords, ["$Label1", "Work", "Home", "Folded", "urgent"]);
    assert_eq!(
        m[0].data,
        b"Subject: flags\nKeywords: Project X, urgent\n\nbody\n"
    );
    let f = &m[1].flags;
    assert!(!f.seen && !f.recent && !f.flagged);
    assert_eq!(m[1].data, b"\nold, unread\n");
}

#[test]
fn crlf_messages_keep_their_line_ends() {
    let file = b"From a@b Thu Dec  3 11:39:31 2026\r\nSubject: crlf\r\n\r\nbody\r\n\r\nFrom a@b Thu Dec  3 11:39:31 2026\r\nSubject: 2\r\n\r\nx\r\n";
    let m = messages(file, Variant::Auto);
    assert_eq!(m[0].data, b"Subject: crlf\r\n\r\nbody\r\n");
    assert_eq!(m[1].data, b"Subject: 2\r\n\r\nx\r\n");
}

#[test]
fn large_messages_are_skipped_not_held() {
    let mut file = b"From a@b Thu Dec  3 11:39:31 2026\nSubject: big\n\n".to_vec();
    for _ in 0..1000 {
        file.extend_from_slice(b"0123456789012345678901234567890123456789\n");
    }
    file.extend_from_slice(b"\nFrom a@b Thu Dec  3 11:39:31 2026\nSubject: small\n\nx\n");
    let mut r = MboxReader::new(&file[..], Variant::Auto, 4096);
    match r.next().unwrap().unwrap() {
        Item::Skipped { offset, reason } => {
            assert_eq!(offset, 0);
            assert!(reason.contains("4096"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match r.next().unwrap().unwrap() {
        Item::Message { message, offset } => {
            assert_eq!(message.data, b"Subject: small\n\nx\n");
            assert_eq!(&file[offset as usize..offset as usize + 5], b"From ");
        }
        other => panic!("{other:?}"),
    }
    assert!(r.next().is_none());
}

#[test]
fn not_an_mbox_is_an_error_and_empty_is_empty() {
    let mut r = MboxReader::new(&b"Subject: hi\n\nbody\n"[..], Variant::Auto, MAX);
    let e = r.next().unwrap().unwrap_err().to_string();
    assert!(e.contains("not an mbox"), "{e}");
    assert!(read_all(b"", Variant::Auto).is_empty());
    assert!(read_all(b"\n\n", Variant::Auto).is_empty());
}

#[test]
fn resumes_at_an_offset() {
    let mut r = MboxReader::new(TWO, Variant::Auto, MAX);
    r.next().unwrap().unwrap();
    let at = r.next_offset();
    let mut r2 = MboxReader::at_offset(&TWO[at as usize..], Variant::Auto, MAX, at);
    match r2.next().unwrap().unwrap() {
        Item::Message { message, offset } => {
            assert_eq!(offset, at);
            assert_eq!(message.data, b"Subject: two\n\nbody\n");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r2.next_offset(), TWO.len() as u64);
}

#[test]
fn written_mboxrd_reads_back_the_same() {
    let msgs = vec![
        Message {
            data: b"Subject: a\n\nFrom x\n>From y\n>>From z\nFrom w Thu Dec  3 11:39:31 2026\n"
                .to_vec(),
            flags: MessageFlags {
                seen: true,
                answered: true,
                flagged: true,
                deleted: true,
                draft: true,
                recent: false,
                keywords: vec!["$Forwarded".into(), "Work".into()],
            },
            internal_date: Some(1_796_297_971),
            sender: Some("bob@example.org".into()),
            uid: None,
        },
        Message {
            data: b"Subject: crlf\r\n\r\nbody\r\n\r\n".to_vec(),
            flags: MessageFlags {
                recent: true,
                ..MessageFlags::default()
            },
            internal_date: Some(0),
            sender: None,
            uid: None,
        },
        Message {
            data: b"Subject: no flags, old\n\n\n".to_vec(),
            flags: MessageFlags::default(),
            internal_date: Some(86_400),
            sender: None,
            uid: None,
        },
    ];
    let mut w = MboxWriter::new(Vec::new());
    for m in &msgs {
        w.write(m).unwrap();
    }
    let file = w.into_inner();
    let back = messages(&file, Variant::Auto);
    assert_eq!(back.len(), msgs.len());
    for (a, b) in msgs.iter().zip(&back) {
        assert_eq!(
            String::from_utf8_lossy(&a.data),
            String::from_utf8_lossy(&b.data)
        );
        assert_eq!(a.flags, b.flags);
        assert_eq!(a.internal_date, b.internal_date);
    }
    assert_eq!(back[0].sender.as_deref(), Some("bob@example.org"));
    assert_eq!(back[1].sender.as_deref(), Some("MAILER-DAEMON"));
    // Explicit mboxrd reads it the same way.
    assert_eq!(messages(&file, Variant::Mboxrd), back);
}

#[test]
fn variant_names() {
    assert_eq!("MBOXCL2".parse::<Variant>(), Ok(Variant::Mboxcl2));
    assert!("mmdf".parse::<Variant>().unwrap_err().contains("unknown"));
}
