//! The Maildir store's readers of names and small files found on disk.

use postern_store::maildir::internals::{
    file_name, merge_info, parse_info, parse_name, valid_delivery_key, KeywordLetters, MetaFile,
};
use postern_store::names::{
    account_relpath, canonical_mailbox, decode_folder_dir, folder_dir_name,
};
use postern_store::Flags;

/// A folder's `dovecot-keywords` numbering used for the round trip.
const KEYWORDS: &str = "0 $Junk\n1 work\n3 $label1\n";

/// What the store reads from a Maildir it shares with other programs (mutt, Dovecot, rsync):
/// message file names (`<unique>,S=..,W=..,U=..:2,<flags>`, the Maildir and Maildir++
/// conventions, Dovecot's `,W=` and keyword letters), folder directory names (`.A.B`,
/// percent-encoded), and the contents of `dovecot-keywords` and `postern-uidvalidity`.
///
/// The input is taken as UTF-8 (lossily) and read as each of those. Checks: no panic; parsed
/// fields come from the name (a `,K=` key is a valid delivery key, a `,U=` uid is not 0); flags
/// → file name → flags is the identity (the file name is the truth for flags, DESIGN principle
/// 2): the info part written for the flags a name carries parses back to the same system flags,
/// `$Forwarded`, numbered keywords and unknown letters; a folder directory name decodes only if
/// it is the canonical encoding of its mailbox name; a mailbox's canonical form is a fixed point;
/// the uidvalidity file renders and parses back to the same values.
pub fn maildir_name(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = parse_name(&text);
    assert!(text.starts_with(parsed.base));
    if let Some(k) = parsed.key {
        assert!(valid_delivery_key(k));
    }
    assert_ne!(parsed.uid, Some(0));
    let info = parse_info(parsed.info);
    let kw = KeywordLetters::parse(KEYWORDS);
    let flags = merge_info(&Flags::default(), &info, &kw);
    let name = file_name(parsed.base, &flags, &info.extra, &kw);
    let again = parse_name(&name);
    assert_eq!(again.base, parsed.base);
    let back = parse_info(again.info);
    assert_eq!(back.system, info.system);
    assert_eq!(back.forwarded, info.forwarded);
    assert_eq!(back.extra, info.extra);
    let known: String = info
        .keyword_letters
        .chars()
        .filter(|&c| kw.keywords(c.encode_utf8(&mut [0; 4])).next().is_some())
        .collect();
    assert_eq!(back.keyword_letters, known);
    assert_eq!(merge_info(&Flags::default(), &back, &kw), flags);

    if let Some(mailbox) = decode_folder_dir(&text) {
        assert_eq!(folder_dir_name(&mailbox).as_deref(), Some(&*text));
    }
    if let Ok(c) = canonical_mailbox(&text) {
        assert_eq!(canonical_mailbox(&c).ok().as_ref(), Some(&c));
        if let Some(dir) = folder_dir_name(&c) {
            assert_eq!(decode_folder_dir(&dir).as_ref(), Some(&c));
        }
    }
    let _ = account_relpath(&text);
    let numbering = KeywordLetters::parse(&text);
    let _ = numbering.letters(&flags);
    if let Some(meta) = MetaFile::parse(&text) {
        assert_eq!(MetaFile::parse(&meta.render()).as_ref(), Some(&meta));
    }
}
