//! `postern newaliases` (and `sendmail -bi`): the classic aliases(5) file imported into the
//! directory.
//!
//! The syntax (comments, continuation lines, quoted targets, `|command`, `/file`,
//! `:include:`) is parsed by [`postern_directory::aliases_file`], which has no I/O (and a fuzz
//! target); this module reads the files and applies the semantics.
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
use postern_directory::aliases_file::{parse, parse_include, Target};
use postern_directory::{FileAlias, FileImport};
use std::fmt;
use std::path::{Path, PathBuf};

/// Deepest nesting of `:include:` files.
const MAX_INCLUDE_DEPTH: usize = 8;

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
    use postern_directory::aliases_file::Target;
    use std::path::Path;

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
