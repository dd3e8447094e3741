//! Keywords in Maildir file names, kept the way Dovecot keeps them, so a Maildir moved between
//! postern and Dovecot (or rebuilt with `postern reindex`) keeps its keywords both ways.
//!
//! Each folder's `dovecot-keywords` file numbers up to 26 keywords, one `<n> <name>` line each;
//! the lower-case letter `a` + n in a message file's `:2,` info means that keyword is set.
//! Keywords past the 26th live only in the index, as they do in Dovecot's. `$Forwarded` keeps
//! its own letter `P` (the Maildir "passed" flag) and is never numbered.

use std::fs;
use std::path::Path;

use crate::error::Result;
use crate::maildir::files::{write_atomic, NameGen};
use crate::types::{Flags, FORWARDED_KEYWORD};

/// The keyword numbering file of a folder.
pub(super) const KEYWORDS_FILE: &str = "dovecot-keywords";

/// Letters `a` to `z`.
const LETTERS: usize = 26;

/// A folder's keyword numbering: `names[n]` is the keyword of letter `a` + n.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeywordLetters {
    names: Vec<Option<String>>,
}

impl KeywordLetters {
    /// Reads the folder's numbering; a missing or unreadable file numbers nothing.
    pub fn load(dir: &Path) -> KeywordLetters {
        match fs::read_to_string(dir.join(KEYWORDS_FILE)) {
            Ok(text) => KeywordLetters::parse(&text),
            Err(_) => KeywordLetters::default(),
        }
    }

    /// Parses `<n> <name>` lines; lines that are not of that form, numbers past 25 and
    /// repeated names are ignored.
    pub fn parse(text: &str) -> KeywordLetters {
        let mut out = KeywordLetters::default();
        for line in text.lines() {
            let Some((n, name)) = line.split_once(' ') else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else { continue };
            let name = name.trim();
            if n >= LETTERS || !crate::types::valid_keyword(name) || out.index_of(name).is_some() {
                continue;
            }
            if out.names.len() <= n {
                out.names.resize(n + 1, None);
            }
            out.names[n] = Some(name.to_owned());
        }
        out
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (n, name) in self.names.iter().enumerate() {
            if let Some(name) = name {
                out.push_str(&format!("{n} {name}\n"));
            }
        }
        out
    }

    fn index_of(&self, keyword: &str) -> Option<usize> {
        self.names.iter().position(|n| {
            n.as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(keyword))
        })
    }

    /// Whether the keyword has a letter in this folder (then the file name is its truth).
    pub fn has_letter(&self, keyword: &str) -> bool {
        self.index_of(keyword).is_some()
    }

    /// The letters of the numbered keywords among `flags`.
    pub fn letters(&self, flags: &Flags) -> String {
        let mut out = String::new();
        for k in flags.keywords() {
            if k.eq_ignore_ascii_case(FORWARDED_KEYWORD) {
                continue;
            }
            if let Some(n) = self.index_of(k) {
                out.push(char::from(b'a' + n as u8));
            }
        }
        out
    }

    /// The keywords that lower-case `letters` stand for (unknown letters are skipped).
    pub fn keywords<'a>(&'a self, letters: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        letters.bytes().filter_map(|b| {
            let n = usize::from(b.checked_sub(b'a')?);
            self.names.get(n)?.as_deref()
        })
    }

    /// Numbers the keywords of `flags` that have no letter yet, while letters are free, and
    /// writes the file durably when it changed (before any file name uses a new letter).
    pub fn assign(&mut self, dir: &Path, flags: &Flags, gen: &NameGen) -> Result<()> {
        let mut changed = false;
        for k in flags.keywords() {
            if k.eq_ignore_ascii_case(FORWARDED_KEYWORD) || self.has_letter(k) {
                continue;
            }
            let free = self.names.iter().position(Option::is_none);
            match free {
                Some(n) => self.names[n] = Some(k.clone()),
                None if self.names.len() < LETTERS => self.names.push(Some(k.clone())),
                None => break,
            }
            changed = true;
        }
        if changed {
            write_atomic(&dir.join(KEYWORDS_FILE), self.render().as_bytes(), gen)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dovecot_files_and_maps_letters() {
        let k = KeywordLetters::parse("0 $Label1\n2 Work\nbogus\n30 Far\n3 $label1\n");
        assert_eq!(k.keywords("acbz").collect::<Vec<_>>(), ["$Label1", "Work"]);
        let f = Flags::from_names(["work", "$Label1", "Other", "$Forwarded"]).unwrap();
        let mut l: Vec<char> = k.letters(&f).chars().collect();
        l.sort_unstable();
        assert_eq!(l, ['a', 'c']);
        assert!(k.has_letter("WORK") && !k.has_letter("Other"));
        assert_eq!(k.render(), "0 $Label1\n2 Work\n");
    }

    #[test]
    fn assigns_free_letters_up_to_26_and_writes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let gen = NameGen::new("test");
        let mut k = KeywordLetters::parse("1 B\n");
        let names: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
        k.assign(dir.path(), &Flags::from_names(&names).unwrap(), &gen)
            .unwrap();
        let again = KeywordLetters::load(dir.path());
        assert_eq!(again, k);
        assert_eq!(again.keywords("ab").collect::<Vec<_>>(), ["k0", "B"]);
        assert_eq!(names.iter().filter(|n| again.has_letter(n)).count(), 25);
        assert_eq!(again.names.len(), 26);
    }
}
