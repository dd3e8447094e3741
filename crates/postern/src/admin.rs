//! The admin commands: domains, users, aliases, reindex. They open the same database and Maildirs
//! as a running server (SQLite WAL and the store's locking make that safe), so they work while
//! `serve` runs.

use crate::cli::{AliasCommand, DomainCommand, UserCommand};
use crate::secret::read_secret;
use anyhow::{bail, Context as _};
use postern_config::Config;
use postern_directory::{DirectoryOptions, SqliteDirectory};
use postern_store::maildir::MaildirStore;

/// The directory and the store of one data directory.
pub(crate) struct Context {
    pub directory: SqliteDirectory,
    pub store: MaildirStore,
}

impl Context {
    /// Opens both, creating the data directory on first use.
    pub(crate) fn open(config: &Config) -> anyhow::Result<Context> {
        if config.source == postern_config::Source::Defaults && !config.data_dir.exists() {
            bail!(
                "no configuration file (looked for ./postern.toml and /etc/postern/postern.toml) \
                 and no data directory at {}: this command would start an empty one here. \
                 Give --config FILE, run it where the data directory is, or start `postern serve` \
                 once to create it",
                config.data_dir.display()
            );
        }
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("data_dir: cannot create {}", config.data_dir.display()))?;
        let options = DirectoryOptions {
            subaddress_separator: config.mail.recipient_delimiter.chars().next(),
            ..DirectoryOptions::default()
        };
        let db = config.directory_db();
        let directory = SqliteDirectory::open_with(&db, options)
            .with_context(|| format!("opening the directory {}", db.display()))?;
        let root = config.mail_root();
        let store = MaildirStore::open(&root, &config.hostname)
            .with_context(|| format!("opening the mail store {}", root.display()))?;
        Ok(Context { directory, store })
    }
}

pub(crate) fn domain(config: &Config, cmd: DomainCommand) -> anyhow::Result<()> {
    let ctx = Context::open(config)?;
    match cmd {
        DomainCommand::Add { domain, postmaster } => {
            if let Some(target) = &postmaster {
                if ctx.directory.get_account(target)?.is_none() {
                    bail!("--postmaster {target}: there is no such account (add it first)");
                }
            }
            let d = ctx.directory.add_domain(&domain)?;
            println!("added domain {}", d.name);
            match &postmaster {
                Some(target) => {
                    for alias in role_aliases(&ctx.directory, &d.name, target)? {
                        println!("{alias} -> {target}");
                    }
                }
                None => println!(
                    "postmaster@{0} and abuse@{0} will go to the first account added in {0}",
                    d.name
                ),
            }
        }
        DomainCommand::List => {
            for d in ctx.directory.list_domains()? {
                if d.unicode_name != d.name {
                    println!("{} ({})", d.name, d.unicode_name);
                } else {
                    println!("{}", d.name);
                }
            }
        }
        DomainCommand::Remove { domain, force } => {
            if force {
                let r = ctx.directory.remove_domain_force(&domain)?;
                println!(
                    "removed domain {domain} with {} account(s) and {} alias entries; their mail stays on disk",
                    r.accounts, r.aliases
                );
            } else {
                ctx.directory.remove_domain(&domain)?;
                println!("removed domain {domain}");
            }
        }
    }
    Ok(())
}

pub(crate) fn user(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    let ctx = Context::open(config)?;
    match cmd {
        UserCommand::Add { address, hash } => {
            let account = if hash {
                // Not trimmed here: the directory ignores white space around a hash,
                // but after {PLAIN} it is part of the password.
                let h = read_secret("password hash")?;
                ctx.directory.add_account_with_hash(&address, &h)?
            } else {
                let pw = read_secret("password")?;
                ctx.directory.add_account(&address, &pw)?
            };
            // The directory entry and the Maildir come into being together; the mail of an
            // account removed without --purge is still there, and comes back with it.
            let kept = ctx
                .store
                .account_dir(&account.address)?
                .join("cur")
                .is_dir();
            if !kept {
                if let Err(e) = ctx.store.create_account(&account.address) {
                    let _ = ctx.directory.remove_account(&account.address);
                    return Err(e)
                        .with_context(|| format!("creating the mailbox of {}", account.address));
                }
            }
            println!("added {}", account.address);
            if kept {
                println!(
                    "{} has its mail back: it was kept when the account was removed",
                    account.address
                );
            }
            let domain = account.address.rsplit_once('@').map_or("", |(_, d)| d);
            for alias in role_aliases(&ctx.directory, domain, &account.address)? {
                println!("{alias} -> {}", account.address);
            }
        }
        UserCommand::List { domain } => {
            for a in ctx.directory.list_accounts(domain.as_deref())? {
                let usage = ctx
                    .store
                    .quota_usage(&a.address)
                    .map(|u| format!("{} messages, {}", u.messages, human_bytes(u.bytes)))
                    .unwrap_or_else(|e| format!("mailbox unavailable: {e}"));
                let mut notes = Vec::new();
                if !a.enabled {
                    notes.push("disabled".to_string());
                }
                if a.has_apop_secret {
                    notes.push("apop".to_string());
                }
                if !a.has_scram_keys {
                    // An imported hash (or a non-ASCII password): SCRAM fails until the
                    // next plaintext login derives the keys. The keys are never printed.
                    notes.push("no SCRAM keys yet".to_string());
                }
                if let Some(q) = a.quota_bytes {
                    notes.push(format!("quota {}", human_bytes(q)));
                }
                let notes = if notes.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", notes.join(", "))
                };
                println!("{}\t{usage}{notes}", a.address);
            }
        }
        UserCommand::Passwd { address, hash } => {
            if hash {
                let h = read_secret("password hash")?;
                ctx.directory.set_password_hash(&address, &h)?;
            } else {
                let pw = read_secret("password")?;
                ctx.directory.set_password(&address, &pw)?;
            }
            println!("password changed for {address}");
        }
        UserCommand::Apop { address, clear } => {
            if clear {
                ctx.directory.clear_apop_secret(&address)?;
                println!("APOP disabled for {address}");
            } else {
                let secret = read_secret("APOP secret")?;
                ctx.directory.set_apop_secret(&address, &secret)?;
                println!("APOP secret set for {address}");
            }
        }
        UserCommand::Disable { address } => {
            ctx.directory.set_enabled(&address, false)?;
            println!("{address} disabled: logins are refused, mail is still accepted");
            end_sessions(config, &address)?;
        }
        UserCommand::Enable { address } => {
            ctx.directory.set_enabled(&address, true)?;
            println!("{address} enabled");
        }
        UserCommand::Quota { address, size } => {
            let quota = parse_size(&size)?;
            ctx.directory.set_quota(&address, quota)?;
            match quota {
                Some(q) => println!("quota of {address}: {}", human_bytes(q)),
                None => println!("quota of {address}: none"),
            }
        }
        UserCommand::Remove { address, purge } => {
            let Some(account) = ctx.directory.get_account(&address)? else {
                // Removed earlier without --purge: the mail may still be there.
                let normalised = postern_directory::Address::parse(&address)
                    .map(|a| a.to_string())
                    .unwrap_or(address.clone());
                if purge && ctx.store.account_dir(&normalised)?.join("cur").is_dir() {
                    ctx.store
                        .delete_account(&normalised)
                        .with_context(|| format!("deleting the mail of {normalised}"))?;
                    println!("deleted the mail left by the removed account {normalised}");
                    return Ok(());
                }
                bail!("no such account: {address}");
            };
            ctx.directory.remove_account(&account.address)?;
            end_sessions(config, &account.address)?;
            if purge {
                ctx.store
                    .delete_account(&account.address)
                    .with_context(|| format!("deleting the mail of {}", account.address))?;
                println!("removed {} and its mail", account.address);
            } else {
                println!(
                    "removed {}; its mail stays in {} (remove with --purge)",
                    account.address,
                    config.mail_root().display()
                );
            }
        }
    }
    Ok(())
}

pub(crate) fn alias(config: &Config, cmd: AliasCommand) -> anyhow::Result<()> {
    let ctx = Context::open(config)?;
    match cmd {
        AliasCommand::Add { alias, targets } => {
            let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
            let a = ctx.directory.add_alias(&alias, &targets)?;
            println!("{} -> {}", a.address, a.targets.join(", "));
        }
        AliasCommand::List => {
            for a in ctx.directory.list_aliases(None)? {
                match a.source.as_deref().and_then(|s| s.strip_prefix("file:")) {
                    Some(file) => println!(
                        "{} -> {}  (from {file}; `postern newaliases` manages it)",
                        a.address,
                        a.targets.join(", ")
                    ),
                    None => println!("{} -> {}", a.address, a.targets.join(", ")),
                }
            }
        }
        AliasCommand::Remove { alias, targets } => {
            let removed = if targets.is_empty() {
                ctx.directory.remove_alias(&alias, None)?
            } else {
                let mut n = 0;
                for t in &targets {
                    n += ctx.directory.remove_alias(&alias, Some(t))?;
                }
                n
            };
            if removed == 0 {
                bail!("no such alias entry: {alias}");
            }
            println!("removed {removed} target(s) of {alias}");
        }
    }
    Ok(())
}

pub(crate) fn reindex(config: &Config, address: Option<&str>) -> anyhow::Result<()> {
    let ctx = Context::open(config)?;
    let accounts: Vec<String> = match address {
        Some(a) => vec![
            ctx.directory
                .get_account(a)?
                .with_context(|| format!("no such account: {a}"))?
                .address,
        ],
        None => ctx
            .directory
            .list_accounts(None)?
            .into_iter()
            .map(|a| a.address)
            .collect(),
    };
    for account in accounts {
        let r = ctx
            .store
            .reindex(&account)
            .with_context(|| format!("reindexing {account}"))?;
        println!(
            "{account}: {} mailbox(es), {} message(s), {} given new UIDs",
            r.mailboxes, r.messages, r.renumbered
        );
    }
    Ok(())
}

/// `postern kick`: ends the account's open sessions in the running serve.
pub(crate) fn kick(config: &Config, address: &str) -> anyhow::Result<()> {
    let account = postern_directory::Address::parse(address)
        .with_context(|| format!("{address:?} is not an address"))?
        .to_string();
    match crate::control::kick(&config.data_dir, &account)? {
        Some(n) => println!("ended {n} open session(s) of {account}"),
        None => bail!(
            "no postern serve is running on {}: nothing to end",
            config.data_dir.display()
        ),
    }
    Ok(())
}

/// After a disable or a removal: the account's open sessions end too.
fn end_sessions(config: &Config, account: &str) -> anyhow::Result<()> {
    let account = postern_directory::Address::parse(account)
        .map(|a| a.to_string())
        .unwrap_or_else(|_| account.to_string());
    if let Some(n) = crate::control::kick(&config.data_dir, &account)? {
        if n > 0 {
            println!("ended {n} open session(s) of {account}");
        }
    }
    Ok(())
}

/// The addresses every mail domain must have (RFC 5321 §4.5.1 postmaster, RFC 2142 abuse):
/// each one that is neither an account nor an alias yet becomes an alias of `target`.
/// Returns the aliases made.
fn role_aliases(
    directory: &SqliteDirectory,
    domain: &str,
    target: &str,
) -> anyhow::Result<Vec<String>> {
    let mut made = Vec::new();
    for role in ["postmaster", "abuse"] {
        let address = format!("{role}@{domain}");
        if directory.get_account(&address)?.is_none()
            && directory.alias_targets(&address)?.is_empty()
        {
            directory.add_alias(&address, &[target])?;
            made.push(address);
        }
    }
    Ok(made)
}

/// `500M`, `2G`, `1048576`, `1.5G` (powers of 1024), or `none` for no quota.
fn parse_size(text: &str) -> anyhow::Result<Option<u64>> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let (number, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => bail!("size {text:?} is not a number of bytes (e.g. 500M, 2G; suffixes K, M, G, T) or none"),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .with_context(|| {
            format!("size {text:?} is not a number of bytes (e.g. 500M, 2G) or none")
        })?;
    let bytes = value * (1u64 << shift) as f64;
    if bytes > u64::MAX as f64 / 2.0 {
        bail!("size {text:?} is too large");
    }
    Ok(Some(bytes.round() as u64))
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576").unwrap(), Some(1 << 20));
        assert_eq!(parse_size("500M").unwrap(), Some(500 << 20));
        assert_eq!(parse_size("2g").unwrap(), Some(2 << 30));
        assert_eq!(parse_size("1.5K").unwrap(), Some(1536));
        assert_eq!(parse_size("none").unwrap(), None);
        for bad in ["", "-1", "2X", "G", "1e400", "99999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
