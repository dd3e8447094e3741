#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use postern_store::maildir::MaildirStore;
use postern_store::Flags;

pub(crate) const ACCT: &str = "alice@example.org";

pub(crate) fn setup() -> (tempfile::TempDir, MaildirStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = MaildirStore::open(dir.path().join("mail"), "test.host").expect("open");
    store.create_account(ACCT).expect("create account");
    (dir, store)
}

pub(crate) fn msg(n: usize) -> Vec<u8> {
    format!("From: a@b.c\r\nSubject: test {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

pub(crate) fn flags(names: &[&str]) -> Flags {
    Flags::from_names(names).expect("flags")
}

pub(crate) fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub(crate) fn inbox_dir(store: &MaildirStore) -> PathBuf {
    store.account_dir(ACCT).expect("account dir")
}

/// Moves a file's or directory's mtime into the past.
pub(crate) fn age(path: &Path, by: Duration) {
    let f = std::fs::File::open(path).expect("open for mtime");
    f.set_modified(SystemTime::now() - by).expect("set mtime");
}
