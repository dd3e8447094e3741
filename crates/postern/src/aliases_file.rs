//! `postern newaliases` (and `sendmail -bi`): the classic aliases(5) file imported into the
//! directory.
//!
//! Syntax (aliases(5) of Sendmail and Postfix): `name: target, target, ...`; a line that
//! starts with white space continues the previous one; empty lines and lines whose first
//! non-blank character is `#` are ignored. A target is an address (`bob`, `bob@example.net`,
//! `"john smith"@example.net`), `|command` (or `"|command with args"`), `/path/file`, or
//! `:include:/path` (a file of more targets, read at import). Targets are separated by commas
//! outside double quotes.
//!
//! Semantics: the file is authoritative for the aliases that came from it and for nothing
//! else. Every import replaces exactly the entries of this file (tagged with it in the
//! directory), so a removed line removes its alias; aliases made with `postern alias add`
//! (and accounts) are never changed: a name that is one is skipped and reported. A bare name
//! (`postmaster:`) is made in each domain of `[aliases] domains` (default: every local
//! domain); `name@domain:` in that domain only. A bare target is the account or alias of
//! that name in the alias's own domain. `|command` and `/file` targets are refused unless
//! `[aliases] allow_commands` / `allow_files` are true. The import is all or nothing: any
//! error (with its file and line) leaves the directory unchanged.

use anyhow::{bail, Context as _};
use postern_config::Config;
use postern_directory::{FileAlias, FileImport};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Deepest nesting of `:include:` files.
const MAX_INCLUDE_DEPTH: usize = 8;

/// A target as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
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
pub(crate) struct Entry {
    /// The alias name, lower-cased (`postmaster`, or `name@domain`).
    pub name: String,
    /// The line the entry starts on (1-based).
    pub line: usize,
    /// Its targets, each with the line it is on.
    pub targets: Vec<(Target, usize)>,
}

/// A syntax error: the file, the line, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
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

/// What `newaliases` did, as printed at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// The file imported.
    pub file: PathBuf,
    /// Entries in the file.
    pub entries: usize,
    /// What the directory did.
    pub import: FileImport,
    /// Warnings with their lines (skipped names, targets that do not exist).
    pub warnings: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        write!(
            f,
            "{}: {} entr{}, {} alias{} imported, {} removed, {} skipped",
            self.file.display(),
            self.entries,
            if self.entries == 1 { "y" } else { "ies" },
            self.import.imported.len(),
            if self.import.imported.len() == 1 {
                ""
            } else {
                "es"
            },
            self.import.removed.len(),
            self.import.skipped.len()
        )
    }
}

/// A logical line: the text with its continuation lines joined, and where each piece starts.
struct Logical {
    line: usize,
    /// (first line number of the piece, text)
    pieces: Vec<(usize, String)>,
}

/// Parses an aliases(5) file's text.
pub(crate) fn parse(text: &str, file: &Path) -> Result<Vec<Entry>, ParseError> {
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

/// Parses an `:include:` file: targets separated by commas or new lines, `#` comments.
pub(crate) fn parse_include(text: &str, file: &Path) -> Result<Vec<(Target, usize)>, ParseError> {
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

/// Reads `:include:` files (recursively, refusing cycles) and turns targets into the text
/// the directory stores, completing bare names with `domain`. Errors name the file and line.
fn resolve_targets(
    config: &Config,
    targets: &[(Target, usize)],
    file: &Path,
    domain: &str,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<String>,
) -> anyhow::Result<()> {
    for (t, line) in targets {
        let at = |m: String| anyhow::anyhow!("{}:{line}: {m}", file.display());
        let stored = match t {
            Target::Address(a) => {
                if a.contains('@') && !a.ends_with('"') {
                    a.clone()
                } else {
                    format!("{a}@{domain}")
                }
            }
            Target::Command(c) => {
                if !config.aliases.allow_commands {
                    return Err(at(format!(
                        "|{c}: command targets are refused; set [aliases] allow_commands = true to allow them"
                    )));
                }
                format!("|{c}")
            }
            Target::File(p) => {
                if !config.aliases.allow_files {
                    return Err(at(format!(
                        "{}: file targets are refused; set [aliases] allow_files = true to allow them",
                        p.display()
                    )));
                }
                if p.to_str().is_none() {
                    return Err(at(format!("{}: not a UTF-8 path", p.display())));
                }
                p.display().to_string()
            }
            Target::Include(p) => {
                if stack.contains(p) || stack.len() >= MAX_INCLUDE_DEPTH {
                    return Err(at(format!(
                        ":include:{}: included from itself or nested too deep",
                        p.display()
                    )));
                }
                let text = std::fs::read_to_string(p)
                    .map_err(|e| at(format!(":include:{}: {e}", p.display())))?;
                let inner = parse_include(&text, p)?;
                stack.push(p.clone());
                resolve_targets(config, &inner, p, domain, stack, out)?;
                stack.pop();
                continue;
            }
        };
        out.push(stored);
    }
    Ok(())
}

/// `newaliases [--file PATH]`: imports `file` (default `[aliases] file`) into the directory.
pub(crate) fn newaliases(config: &Config, file: Option<&Path>) -> anyhow::Result<Summary> {
    let file = file.unwrap_or(&config.aliases.file);
    let file = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir()?.join(file)
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read the aliases file {}", file.display()))?;
    let entries = parse(&text, &file)?;
    let ctx = crate::admin::Context::open(config)?;
    let directory = &ctx.directory;
    let local: Vec<String> = directory
        .list_domains()?
        .into_iter()
        .map(|d| d.name)
        .collect();
    let domains: Vec<String> = if config.aliases.domains.is_empty() {
        local.clone()
    } else {
        for d in &config.aliases.domains {
            if !directory.is_local_domain(d)? {
                bail!("[aliases] domains: {d} is not a local domain (add it with `postern domain add {d}`)");
            }
        }
        config.aliases.domains.clone()
    };
    if domains.is_empty() {
        bail!("there are no local domains to make aliases in: add one with `postern domain add DOMAIN`");
    }
    let mut aliases: Vec<FileAlias> = Vec::new();
    // For each alias given to the directory: the entry's line.
    let mut origin: Vec<usize> = Vec::new();
    for e in &entries {
        let in_domains: Vec<(String, String)> = match e.name.rsplit_once('@') {
            Some((local_part, d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if !directory.is_local_domain(&d)? {
                    bail!(
                        "{}:{}: {}: {d} is not a local domain",
                        file.display(),
                        e.line,
                        e.name
                    );
                }
                vec![(local_part.to_string(), d)]
            }
            None => domains
                .iter()
                .map(|d| (e.name.clone(), d.clone()))
                .collect(),
        };
        for (local_part, domain) in in_domains {
            let mut resolved = Vec::new();
            resolve_targets(
                config,
                &e.targets,
                &file,
                &domain,
                &mut vec![file.clone()],
                &mut resolved,
            )?;
            let mut targets: Vec<String> = Vec::new();
            for r in resolved {
                if !targets.contains(&r) {
                    targets.push(r);
                }
            }
            if targets.is_empty() {
                bail!(
                    "{}:{}: alias {} has no targets (its :include: files are empty)",
                    file.display(),
                    e.line,
                    e.name
                );
            }
            aliases.push(FileAlias {
                address: format!("{local_part}@{domain}"),
                targets,
            });
            origin.push(e.line);
        }
    }
    let source = format!("file:{}", file.display());
    let import = directory
        .replace_file_aliases(&source, &aliases)
        .map_err(|e| match e.index {
            Some(i) => anyhow::anyhow!(
                "{}:{}: {}: {}",
                file.display(),
                origin[i],
                aliases[i].address,
                e.error
            ),
            None => anyhow::anyhow!("{}: {}", file.display(), e.error),
        })?;
    let mut warnings = Vec::new();
    for (i, why) in &import.skipped {
        warnings.push(format!("{}:{}: skipped: {why}", file.display(), origin[*i]));
    }
    for (i, target) in &import.dangling {
        warnings.push(format!(
            "{}:{}: {}: target {target} is neither an account nor an alias (yet)",
            file.display(),
            origin[*i],
            aliases[*i].address
        ));
    }
    Ok(Summary {
        file,
        entries: entries.len(),
        import,
        warnings,
    })
}

/// `postern newaliases`: imports and prints the summary.
pub(crate) fn run(config: &Config, file: Option<&Path>) -> anyhow::Result<()> {
    let summary = newaliases(config, file)?;
    for w in &summary.warnings {
        eprintln!("postern: warning: {w}");
    }
    let mut s = summary.clone();
    s.warnings.clear();
    println!("{s}");
    Ok(())
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

    #[test]
    fn commands_and_files_need_the_config() {
        let config =
            postern_config::Config::from_toml("", postern_config::Source::Defaults).unwrap();
        let mut out = Vec::new();
        let e = resolve_targets(
            &config,
            &[(Target::Command("/bin/true".into()), 4)],
            Path::new("/etc/aliases"),
            "example.org",
            &mut Vec::new(),
            &mut out,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("/etc/aliases:4: |/bin/true: command targets are refused"),
            "{e}"
        );
        let e = resolve_targets(
            &config,
            &[(Target::File("/tmp/box".into()), 7)],
            Path::new("/etc/aliases"),
            "example.org",
            &mut Vec::new(),
            &mut out,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("/etc/aliases:7: /tmp/box: file targets are refused"),
            "{e}"
        );
        let allowed = postern_config::Config::from_toml(
            "[aliases]\nallow_commands = true\nallow_files = true\n",
            postern_config::Source::Defaults,
        )
        .unwrap();
        resolve_targets(
            &allowed,
            &[
                (Target::Command("/bin/true".into()), 1),
                (Target::File("/tmp/box".into()), 1),
                (Target::Address("bob".into()), 1),
                (Target::Address("x@remote.test".into()), 1),
            ],
            Path::new("/etc/aliases"),
            "example.org",
            &mut Vec::new(),
            &mut out,
        )
        .unwrap();
        let stored: Vec<&str> = out.iter().map(String::as_str).collect();
        assert_eq!(
            stored,
            ["|/bin/true", "/tmp/box", "bob@example.org", "x@remote.test"]
        );
    }
}
