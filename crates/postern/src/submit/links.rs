//! `postern install-links [DIR]`: the `sendmail`, `mailq` and `newaliases` names every Unix
//! program expects, as symbolic links to this executable (postern looks at the name it was
//! called by).

use std::path::{Path, PathBuf};

/// The names installed.
pub(crate) const NAMES: [&str; 3] = ["sendmail", "mailq", "newaliases"];

/// Whether the link at `path` already leads to a postern executable (this one, or another
/// installation of it: its target is named `postern`).
fn links_to_postern(path: &Path, exe: &Path) -> bool {
    let Ok(target) = std::fs::canonicalize(path) else {
        return false;
    };
    target == exe || target.file_name().is_some_and(|n| n == "postern")
}

/// Creates or replaces the links in `dir`; prints what it did. Refuses to replace anything
/// that is not already a link to postern (Postfix's or Exim's sendmail, say) unless `force`.
pub(crate) fn install(dir: &Path, force: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| anyhow::anyhow!("cannot tell where this postern executable is: {e}"))?;
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let mut refused: Vec<PathBuf> = Vec::new();
    for name in NAMES {
        let path = dir.join(name);
        let existing = match std::fs::symlink_metadata(&path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => anyhow::bail!("{}: {e}", path.display()),
        };
        let what = match &existing {
            None => "created",
            Some(m) if m.file_type().is_symlink() && links_to_postern(&path, &exe) => {
                if std::fs::read_link(&path).is_ok_and(|t| t == exe) {
                    println!("{} already links to {}", path.display(), exe.display());
                    continue;
                }
                "updated"
            }
            Some(_) if force => "replaced (--force)",
            Some(m) => {
                let kind = if m.file_type().is_symlink() {
                    format!(
                        "a link to {}",
                        std::fs::read_link(&path)
                            .map_or("?".to_string(), |t| t.display().to_string())
                    )
                } else if m.is_dir() {
                    "a directory".to_string()
                } else {
                    "a file".to_string()
                };
                eprintln!(
                    "{} is {kind}, not postern: left alone (--force replaces it)",
                    path.display()
                );
                refused.push(path);
                continue;
            }
        };
        if existing.as_ref().is_some_and(|m| m.is_dir()) {
            anyhow::bail!("{} is a directory: remove it first", path.display());
        }
        // A new link under a temporary name, renamed over the old one: never a moment
        // without a sendmail.
        let tmp = dir.join(format!(".{name}.postern-tmp"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&exe, &tmp)
            .map_err(|e| anyhow::anyhow!("cannot create a link in {}: {e}", dir.display()))?;
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            anyhow::bail!("cannot install {}: {e}", path.display());
        }
        println!("{} -> {} ({what})", path.display(), exe.display());
    }
    if !refused.is_empty() {
        anyhow::bail!(
            "{} name(s) left alone because another program has them; run again with --force to replace them",
            refused.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_refuses_and_forces() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        std::fs::write(dir.join("sendmail"), "#!/bin/sh\n").unwrap();
        let e = install(dir, false).unwrap_err().to_string();
        assert!(e.contains("--force"), "{e}");
        // The others were installed; the foreign sendmail is untouched.
        assert!(std::fs::symlink_metadata(dir.join("mailq"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(std::fs::symlink_metadata(dir.join("sendmail"))
            .unwrap()
            .is_file());
        // Again: idempotent for ours, still refusing the foreign one.
        assert!(install(dir, false).is_err());
        install(dir, true).unwrap();
        let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
        for n in NAMES {
            assert_eq!(std::fs::read_link(dir.join(n)).unwrap(), exe);
        }
        install(dir, false).unwrap();
    }
}
