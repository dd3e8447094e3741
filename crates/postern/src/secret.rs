//! Reading passwords: from standard input when it is not a terminal (scripts, `echo pw |`), from a
//! prompt otherwise. Never from the command line, where `ps` and shell history would show them.

use anyhow::{bail, Context};
use std::io::{BufRead, IsTerminal};

/// Reads one secret. At a terminal it is asked for twice to catch typos.
pub(crate) fn read_secret(what: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the secret from standard input")?;
        let secret = line.trim_end_matches(['\r', '\n']).to_string();
        if secret.is_empty() {
            bail!("no {what} on standard input");
        }
        return Ok(secret);
    }
    let first =
        rpassword::prompt_password(format!("{what}: ")).context("reading from the terminal")?;
    if first.is_empty() {
        bail!("empty {what}");
    }
    let again = rpassword::prompt_password(format!("{what} again: "))
        .context("reading from the terminal")?;
    if first != again {
        bail!("the two entries differ");
    }
    Ok(first)
}
