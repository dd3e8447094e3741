//! `postern sieve list|get|put|activate|deactivate|delete` and `postern vacation`: an admin's
//! hands on an account's Sieve scripts, with the same store and the same validation as
//! ManageSieve, so they work while `serve` runs.
//!
//! `vacation` writes a generated script into the account's separate vacation slot
//! ([`postern_store::ScriptStore::set_vacation_script`]), run before the user's own script:
//! turning it on or off never touches the user's filters (what vacation(1) users expect).

use crate::admin::Context;
use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use postern_config::Config;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// `postern sieve ...`: the account's Sieve scripts.
#[derive(Debug, Subcommand)]
pub(crate) enum SieveAdminCommand {
    /// List the account's scripts; the active one is marked
    List {
        /// The account's address
        address: String,
    },
    /// Print a script
    Get {
        /// The account's address
        address: String,
        /// The script's name
        name: String,
    },
    /// Store a script (validated first), from FILE or standard input
    Put {
        /// The account's address
        address: String,
        /// The script's name
        name: String,
        /// The script's file; `-` or none: standard input
        file: Option<PathBuf>,
    },
    /// Make a script the active one
    Activate {
        /// The account's address
        address: String,
        /// The script's name
        name: String,
    },
    /// Make no script active
    Deactivate {
        /// The account's address
        address: String,
    },
    /// Delete a script (not the active one)
    Delete {
        /// The account's address
        address: String,
        /// The script's name
        name: String,
    },
}

/// `postern vacation ADDRESS ...`: the vacation auto-reply (RFC 5230).
#[derive(Debug, Args)]
pub(crate) struct VacationArgs {
    /// The account's address
    pub address: String,
    /// Subject of the replies
    #[arg(long, required_unless_present = "off", conflicts_with = "off")]
    pub subject: Option<String>,
    /// File with the text of the replies
    #[arg(long, value_name = "FILE", required_unless_present = "off")]
    pub message_file: Option<PathBuf>,
    /// Answer each sender at most once in this many days (RFC 5230 §4.1)
    #[arg(long, default_value_t = 7, conflicts_with = "off")]
    pub days: u32,
    /// Last day to answer (YYYY-MM-DD, inclusive, in the server's time zone)
    #[arg(long, value_name = "DATE", conflicts_with = "off")]
    pub until: Option<String>,
    /// Turn vacation off
    #[arg(long, conflicts_with_all = ["message_file"])]
    pub off: bool,
}

/// Longest `--days` accepted: a year (the period is a rate limit, not a schedule).
const MAX_DAYS: u32 = 365;

/// Opens the data directory and checks that `address` is an account.
fn open_for(config: &Config, address: &str) -> anyhow::Result<(Context, String)> {
    let ctx = Context::open(config)?;
    let Some(account) = ctx.directory.get_account(address)? else {
        bail!("{address}: there is no such account");
    };
    Ok((ctx, account.address))
}

/// The source of a script file (`-` or none: standard input), as UTF-8 (RFC 5228 §2.1).
fn read_source(file: Option<&Path>) -> anyhow::Result<(String, String)> {
    let (label, bytes) = match file {
        None => ("standard input".to_owned(), read_stdin()?),
        Some(p) if p == Path::new("-") => ("standard input".to_owned(), read_stdin()?),
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        ),
    };
    let source = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{label}: a Sieve script must be UTF-8 (RFC 5228 §2.1)"))?;
    Ok((label, source))
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut v = Vec::new();
    std::io::stdin()
        .read_to_end(&mut v)
        .context("reading standard input")?;
    Ok(v)
}

/// The limits scripts are checked under: `[sieve]`'s, as delivery runs them.
fn limits(config: &Config) -> postern_sieve::Limits {
    postern_delivery::sieve::limits(&config.sieve)
}

pub(crate) fn sieve(config: &Config, cmd: SieveAdminCommand) -> anyhow::Result<()> {
    match cmd {
        SieveAdminCommand::List { address } => {
            let (ctx, account) = open_for(config, &address)?;
            for s in ctx.store.list_scripts(&account)? {
                let mark = if s.active { "  (active)" } else { "" };
                println!("{}  {} bytes{mark}", s.name, s.size);
            }
            if ctx.store.vacation_script(&account)?.is_some() {
                println!("vacation is on (postern vacation {account} --off ends it)");
            }
        }
        SieveAdminCommand::Get { address, name } => {
            let (ctx, account) = open_for(config, &address)?;
            match ctx.store.get_script(&account, &name)? {
                Some(source) => print!("{source}"),
                None => bail!("{account} has no script {name:?}"),
            }
        }
        SieveAdminCommand::Put {
            address,
            name,
            file,
        } => {
            let (ctx, account) = open_for(config, &address)?;
            let (label, source) = read_source(file.as_deref())?;
            if let Err(e) = postern_sieve::compile(&source, &limits(config)) {
                bail!("{label}: line {}: {}", e.line, e.message);
            }
            ctx.store.put_script(&account, &name, &source)?;
            println!("stored script {name:?} for {account}");
        }
        SieveAdminCommand::Activate { address, name } => {
            let (ctx, account) = open_for(config, &address)?;
            ctx.store.activate_script(&account, Some(&name))?;
            println!("{name:?} is now the active script of {account}");
        }
        SieveAdminCommand::Deactivate { address } => {
            let (ctx, account) = open_for(config, &address)?;
            ctx.store.activate_script(&account, None)?;
            println!("{account} has no active script");
        }
        SieveAdminCommand::Delete { address, name } => {
            let (ctx, account) = open_for(config, &address)?;
            ctx.store.delete_script(&account, &name)?;
            println!("deleted script {name:?} of {account}");
        }
    }
    Ok(())
}

pub(crate) fn vacation(config: &Config, args: VacationArgs) -> anyhow::Result<()> {
    let (ctx, account) = open_for(config, &args.address)?;
    if args.off {
        ctx.store.set_vacation_script(&account, None)?;
        println!("vacation is off for {account}");
        return Ok(());
    }
    let (Some(subject), Some(file)) = (args.subject.as_deref(), args.message_file.as_deref())
    else {
        bail!("--subject and --message-file are needed (or --off)");
    };
    if !(1..=MAX_DAYS).contains(&args.days) {
        bail!("--days: between 1 and {MAX_DAYS}");
    }
    if let Some(d) = &args.until {
        check_date(d).with_context(|| format!("--until {d:?}"))?;
    }
    let (label, message) = read_source(Some(file))?;
    let script = vacation_script(subject, &message, args.days, args.until.as_deref());
    // The generated script must compile: a quoting mistake here would silently drop replies.
    if let Err(e) = postern_sieve::compile(&script, &limits(config)) {
        bail!(
            "the vacation script made from {label} does not compile (line {}: {})",
            e.line,
            e.message
        );
    }
    ctx.store.set_vacation_script(&account, Some(&script))?;
    match &args.until {
        Some(d) => println!(
            "vacation is on for {account} until {d}, one reply per sender every {} day(s)",
            args.days
        ),
        None => println!(
            "vacation is on for {account}, one reply per sender every {} day(s)",
            args.days
        ),
    }
    Ok(())
}

/// `YYYY-MM-DD` with a real month and day (RFC 5260 §4.2 "date" part).
fn check_date(d: &str) -> anyhow::Result<()> {
    let b = d.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        bail!("expected YYYY-MM-DD");
    }
    let year: i32 = d[..4].parse()?;
    let month: u8 = d[5..7].parse()?;
    let day: u8 = d[8..].parse()?;
    let month = time::Month::try_from(month).map_err(|_| anyhow::anyhow!("no such month"))?;
    time::Date::from_calendar_date(year, month, day).map_err(|_| anyhow::anyhow!("no such day"))?;
    Ok(())
}

/// RFC 5228 §2.4.2 quoted string: `"` and `\` escaped.
fn sieve_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The generated vacation script: RFC 5230 `vacation :days N :subject S REASON`, inside an
/// RFC 5260 §5 `currentdate :value "le" "date" UNTIL` test (RFC 5231 relational) when it ends.
fn vacation_script(subject: &str, message: &str, days: u32, until: Option<&str>) -> String {
    let action = format!(
        "vacation :days {days} :subject {} {};",
        sieve_string(subject),
        sieve_string(message)
    );
    let mut s = String::from("# Written by `postern vacation`; change it with that command.\n");
    match until {
        None => {
            s.push_str("require \"vacation\";\n");
            s.push_str(&action);
            s.push('\n');
        }
        Some(date) => {
            s.push_str("require [\"vacation\", \"date\", \"relational\"];\n");
            s.push_str(&format!(
                "if currentdate :value \"le\" \"date\" {} {{\n    {action}\n}}\n",
                sieve_string(date)
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vacation_scripts_compile_and_quote() {
        let limits = postern_sieve::Limits::default();
        let s = vacation_script("Away \"now\"", "Back on Monday.\nC:\\temp\n", 3, None);
        assert!(s.contains(":days 3 :subject \"Away \\\"now\\\"\""), "{s}");
        assert!(s.contains("\"Back on Monday.\nC:\\\\temp\n\""), "{s}");
        postern_sieve::compile(&s, &limits).unwrap();
        let s = vacation_script("Away", "Gone.", 7, Some("2026-12-24"));
        assert!(
            s.contains("if currentdate :value \"le\" \"date\" \"2026-12-24\""),
            "{s}"
        );
        postern_sieve::compile(&s, &limits).unwrap();
    }

    #[test]
    fn dates() {
        check_date("2026-12-24").unwrap();
        check_date("2028-02-29").unwrap();
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "26-12-24",
            "2026/12/24",
            "2026-1-011",
        ] {
            assert!(check_date(bad).is_err(), "{bad}");
        }
    }
}
