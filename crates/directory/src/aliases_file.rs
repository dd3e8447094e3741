//! The classic aliases(5) file format (Sendmail's and Postfix's), parsed without I/O:
//! `postern newaliases` reads the file (and its `:include:` files) and imports the result.
//!
//! Syntax: `name: target, target, ...`; a line that starts with white space continues the
//! previous one; empty lines and lines whose first non-blank character is `#` are ignored.
//! A target is an address (`bob`, `bob@example.net`, `"john smith"@example.net`), `|command`
//! (or `"|command with args"`), `/path/file`, or `:include:/path` (a file of more targets).
//! Targets are separated by commas outside double quotes. Every error names its line.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A target as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An address: a bare name (no `@`) or `local@domain`, quotes kept as written.
    Address(String),
    /// `|command`: the command line without the `|`.
    Command(String),
    /// `/path/file`.
    File(PathBuf),
    /// `:include:/path`.
    Include(PathBuf),
}

/// One `name: targets` entry, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The alias name, lower-cased (`postmaster`, or `name@domain`).
    pub name: String,
    /// The line the entry starts on (1-based).
    pub line: usize,
    /// Its targets, each with the line it is on.
    pub targets: Vec<(Target, usize)>,
}

/// A syntax error: the file, the line, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The file.
    pub file: PathBuf,
    /// The line (1-based).
    pub line: usize,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A logical line: the text with its continuation lines joined, and where each piece starts.
struct Logical {
    line: usize,
    /// (first line number of the piece, text)
    pieces: Vec<(usize, String)>,
}

/// Parses an aliases(5) file's text; `file` is only for the errors.
pub fn parse(text: &str, file: &Path) -> Result<Vec<Entry>, ParseError> {
    let err = |line: usize, message: String| ParseError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let mut logical: Vec<Logical> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            match logical.last_mut() {
                Some(l) => l.pieces.push((n, raw.to_string())),
                None => {
                    return Err(err(
                        n,
                        "a continuation line (it starts with white space) with no alias before it"
                            .into(),
                    ))
                }
            }
        } else {
            logical.push(Logical {
                line: n,
                pieces: vec![(n, raw.to_string())],
            });
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut entries = Vec::new();
    for l in logical {
        let (first_line, first) = &l.pieces[0];
        let Some(colon) = unquoted_find(first, b':') else {
            return Err(err(
                *first_line,
                format!("expected `name: target, ...`, found {:?}", shorten(first)),
            ));
        };
        let name = unquote_name(first[..colon].trim())
            .map_err(|m| err(l.line, m))?
            .to_lowercase();
        if name.is_empty() {
            return Err(err(l.line, "an alias with no name before `:`".into()));
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(
                l.line,
                format!("alias name {name:?} has white space in it"),
            ));
        }
        if let Some(prev) = seen.insert(name.clone(), l.line) {
            return Err(err(
                l.line,
                format!("alias {name:?} is already defined on line {prev}"),
            ));
        }
        let mut targets = Vec::new();
        let mut rest: Vec<(usize, &str)> = vec![(*first_line, &first[colon + 1..])];
        rest.extend(l.pieces[1..].iter().map(|(n, t)| (*n, t.as_str())));
        for (n, piece) in rest {
            for item in split_list(piece).map_err(|m| err(n, m))? {
                targets.push((classify(&item).map_err(|m| err(n, m))?, n));
            }
        }
        if targets.is_empty() {
            return Err(err(l.line, format!("alias {name:?} has no targets")));
        }
        entries.push(Entry {
            name,
            line: l.line,
            targets,
        });
    }
    Ok(entries)
}

/// Parses an `:include:` file: targets separated by commas or new lines, `#` comments; each
/// with its line.
pub fn parse_include(text: &str, file: &Path) -> Result<Vec<(Target, usize)>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let err = |message: String| ParseError {
            file: file.to_path_buf(),
            line: i + 1,
            message,
        };
        for item in split_list(raw).map_err(err)? {
            out.push((classify(&item).map_err(err)?, i + 1));
        }
    }
    Ok(out)
}

/// The byte offset of the first `c` outside double quotes.
fn unquoted_find(s: &str, c: u8) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if b == b'\\' && quoted {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == c && !quoted {
            return Some(i);
        }
    }
    None
}

/// An alias name, which may be written in quotes.
fn unquote_name(s: &str) -> Result<String, String> {
    if let Some(inner) = s.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return Err(format!("unbalanced quote in alias name {s:?}"));
        };
        return Ok(inner.replace("\\\"", "\"").replace("\\\\", "\\"));
    }
    Ok(s.to_string())
}

/// Splits a target list at commas outside quotes; items trimmed, empty ones dropped.
fn split_list(s: &str) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => {
                items.push(std::mem::take(&mut cur));
            }
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err(format!(
            "unbalanced double quote in {:?}",
            shorten(s.trim())
        ));
    }
    items.push(cur);
    Ok(items
        .into_iter()
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
        .collect())
}

/// The contents of a quoted string, escapes resolved.
fn unquote(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `item` is one quoted string (`"..."`, escapes allowed inside).
fn wholly_quoted(item: &str) -> bool {
    let Some(inner) = item.strip_prefix('"') else {
        return false;
    };
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return i + 1 == inner.len();
        }
    }
    false
}

/// What one list item is.
fn classify(item: &str) -> Result<Target, String> {
    // A wholly quoted item: `"|command args"`, `"/path with space"`, `"local part"`.
    if wholly_quoted(item) {
        let inner = unquote(&item[1..item.len() - 1]);
        if inner.starts_with('|') || inner.starts_with('/') || inner.starts_with(":include:") {
            return classify_plain(&inner);
        }
        return Ok(Target::Address(item.to_string()));
    }
    classify_plain(item)
}

fn classify_plain(item: &str) -> Result<Target, String> {
    if let Some(cmd) = item.strip_prefix('|') {
        let cmd = cmd.trim();
        if cmd.is_empty() {
            return Err("`|` with no command after it".into());
        }
        return Ok(Target::Command(cmd.to_string()));
    }
    if item.starts_with('/') {
        return Ok(Target::File(PathBuf::from(item)));
    }
    if item.len() >= 9 && item[..9].eq_ignore_ascii_case(":include:") {
        let path = item[9..].trim();
        if path.is_empty() {
            return Err("`:include:` with no file name".into());
        }
        if !Path::new(path).is_absolute() {
            return Err(format!(":include:{path}: the path must be absolute"));
        }
        return Ok(Target::Include(PathBuf::from(path)));
    }
    if item.contains(char::is_whitespace) && !item.contains('"') {
        return Err(format!(
            "{:?} is not an address (quote a command as \"|command args\")",
            shorten(item)
        ));
    }
    Ok(Target::Address(item.to_string()))
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<Entry>, ParseError> {
        parse(text, Path::new("/etc/aliases"))
    }

    fn targets(e: &Entry) -> Vec<Target> {
        e.targets.iter().map(|(t, _)| t.clone()).collect()
    }

    #[test]
    fn every_syntax() {
        let text = "# comment\n\
                    \n\
                    postmaster: root\n\
                    Staff: alice, bob@example.net,\n\
                    \t\"john smith\"@example.net\n\
                    \x20  # a comment inside does not end the entry\n\
                    \x20 , carol\n\
                    log: |/usr/bin/logger -t mail, \"|/usr/local/bin/filter --x, y\"\n\
                    archive: /var/mail/archive\n\
                    team: :include:/etc/mail/team.list\n\
                    \"Quoted.Name\": dave\n";
        let e = p(text).unwrap();
        assert_eq!(e.len(), 6);
        assert_eq!(e[0].name, "postmaster");
        assert_eq!(e[0].line, 3);
        assert_eq!(targets(&e[0]), vec![Target::Address("root".into())]);
        assert_eq!(e[1].name, "staff");
        assert_eq!(
            targets(&e[1]),
            vec![
                Target::Address("alice".into()),
                Target::Address("bob@example.net".into()),
                Target::Address("\"john smith\"@example.net".into()),
                Target::Address("carol".into()),
            ]
        );
        assert_eq!(e[1].targets[2].1, 5);
        assert_eq!(e[1].targets[3].1, 7);
        assert_eq!(
            targets(&e[2]),
            vec![
                Target::Command("/usr/bin/logger -t mail".into()),
                Target::Command("/usr/local/bin/filter --x, y".into()),
            ]
        );
        assert_eq!(
            targets(&e[3]),
            vec![Target::File("/var/mail/archive".into())]
        );
        assert_eq!(
            targets(&e[4]),
            vec![Target::Include("/etc/mail/team.list".into())]
        );
        assert_eq!(e[5].name, "quoted.name");
    }

    #[test]
    fn errors_name_their_line() {
        let cases = [
            ("  orphan\n", 1, "continuation"),
            ("a: b\nnocolon here\n", 2, "expected"),
            ("a: b\n\nb:\n", 3, "no targets"),
            ("a: b\nA: c\n", 2, "already defined on line 1"),
            ("a: \"unbalanced\n", 1, "unbalanced"),
            ("a: |\n", 1, "no command"),
            ("a: :include:\n", 1, "no file name"),
            ("a: :include:relative\n", 1, "absolute"),
            ("a: two words\n", 1, "not an address"),
            (": x\n", 1, "no name"),
        ];
        for (text, line, what) in cases {
            let e = p(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(what), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("/etc/aliases:{line}: ")));
        }
    }

    #[test]
    fn include_files() {
        let t = parse_include("# team\nalice, bob\n\n|/bin/true\n", Path::new("/x")).unwrap();
        assert_eq!(
            t,
            vec![
                (Target::Address("alice".into()), 2),
                (Target::Address("bob".into()), 2),
                (Target::Command("/bin/true".into()), 4)
            ]
        );
    }

    proptest::proptest! {
        /// Any text made of the format's own characters parses or fails with a line that
        /// exists; never a panic.
        #[test]
        fn never_panics(text in "[a-z:,|/\"\\ \t\n#@.]{0,200}") {
            let lines = text.lines().count();
            match parse(&text, Path::new("/f")) {
                Ok(entries) => {
                    for e in entries {
                        proptest::prop_assert!(!e.targets.is_empty());
                        proptest::prop_assert!(e.line >= 1 && e.line <= lines);
                    }
                }
                Err(e) => proptest::prop_assert!(e.line >= 1 && e.line <= lines.max(1)),
            }
        }
    }
}
