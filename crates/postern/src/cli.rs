//! The command line: `postern [--config FILE] <command>`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "postern",
    version,
    about = "A complete Internet mail system in one program",
    after_help = "Logs go to standard error at level info. POSTERN_LOG changes it: \
                  POSTERN_LOG=debug, or any filter such as POSTERN_LOG=info,postern_smtp=debug."
)]
pub(crate) struct Cli {
    /// Configuration file [default: ./postern.toml, then /etc/postern/postern.toml, else built-in defaults]
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        env = "POSTERN_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// Say which configuration file and data directory the command works on
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run every enabled listener until SIGTERM or SIGINT
    Serve,
    /// Validate the configuration, print the effective settings, and warn about what
    /// others can read in data_dir and about the TLS certificate
    CheckConfig,
    /// Ask the running serve to re-read its configuration, TLS certificate and DKIM keys
    /// (as SIGHUP does); open sessions are not disturbed
    Reload,
    /// Make everything in data_dir private to the server's user (0700 directories, 0600
    /// files); run as root, also give it to [server] user
    FixPermissions,
    /// Manage the domains this server receives mail for
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage accounts (mailboxes with a password)
    #[command(subcommand)]
    User(UserCommand),
    /// Manage aliases, lists and catch-alls
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Inspect and manage the mail queue (works while serve runs)
    #[command(subcommand)]
    Queue(QueueCommand),
    /// List the mail queue in Postfix's mailq format (for scripts that parse it)
    Mailq,
    /// Deliver a message from standard input to local recipients, as the queue would (an LDA
    /// for another MTA's pipe transport or mailbox_command); exits with sysexits codes
    Deliver(crate::deliver::DeliverArgs),
    /// Import a classic aliases(5) file (default [aliases] file, /etc/aliases) into the
    /// directory: the file's aliases are replaced, aliases made with `alias add` are kept
    Newaliases {
        /// The aliases file to import instead of [aliases] file
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Manage DKIM signing keys
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// Print the DNS records to publish for a domain (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV)
    Dns {
        /// A local domain
        domain: String,
    },
    /// End an account's open IMAP, POP3 and ManageSieve sessions in the running serve
    Kick {
        /// The account's address
        address: String,
    },
    /// Rebuild mailbox indexes from the Maildir files (all accounts, or one)
    Reindex {
        /// The account to reindex
        address: Option<String>,
    },
    /// Sieve filters: an account's scripts (as ManageSieve manages them), and trying a script
    /// on a message
    #[command(subcommand)]
    Sieve(SieveCommand),
    /// Turn an account's vacation auto-reply on or off (its own scripts are left alone)
    Vacation(crate::sieve_admin::VacationArgs),
    /// New-mail hooks ([notify]): try them on an account
    #[command(subcommand)]
    Notify(crate::notify_cmd::NotifyCommand),
    /// Show the TLS outcomes of deliveries to a destination domain (DANE, MTA-STS, or none),
    /// as recorded for TLS reporting (RFC 8460) in data_dir/tlsrpt.db
    TlsReport {
        /// The destination domain
        domain: String,
        /// Print the RFC 8460 JSON report of one day (yesterday unless --date) instead
        #[arg(long)]
        json: bool,
        /// Send that report now to the domain's _smtp._tls rua (once per day and domain)
        #[arg(long, conflicts_with = "json")]
        send: bool,
        /// The UTC day (YYYY-MM-DD) of --json or --send
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
    },
    /// Send a message from standard input, as Postfix's sendmail(1)
    ///
    /// Also what postern does when called as `sendmail`, `mailq` or `newaliases`:
    /// `postern sendmail [-t] [-i] [-f SENDER] [-F NAME] [-N NOTIFY] [-R full|hdrs] [-V ENVID]
    /// [-bs|-bp|-bi] [--] [RECIPIENT...]`
    #[command(disable_help_flag = true)]
    Sendmail {
        /// sendmail's own options and the recipients
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Link `sendmail`, `mailq` and `newaliases` in DIR to this executable
    InstallLinks {
        /// Where the links go
        #[arg(default_value = "/usr/sbin")]
        dir: std::path::PathBuf,
        /// Replace files there that are not already links to postern (another MTA's sendmail)
        #[arg(long)]
        force: bool,
    },
    /// Import mail into an account from an mbox file or a Maildir tree (resumable)
    #[command(subcommand)]
    Import(crate::transfer_cmd::ImportCommand),
    /// Export an account's mail as mbox files or a Maildir++ tree
    Export(crate::transfer_cmd::ExportArgs),
    /// Retrieval from remote POP3/IMAP mailboxes (the fetchmail job): add, list, remove,
    /// run now
    #[command(subcommand)]
    Fetch(crate::fetch::cli::FetchCommand),
    /// DMARC evaluations of inbound mail ([policy]), for the aggregate reports (read-only)
    #[command(subcommand)]
    Dmarc(crate::dmarc_cmd::DmarcCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum SieveCommand {
    /// Run a script on a message without delivering it and print the actions it would take,
    /// like Pigeonhole's sieve-test (includes come from the script's directory; only INBOX
    /// exists; no vacation or duplicate history)
    Test(SieveTestArgs),
    /// list, get, put, activate, deactivate, delete: an account's stored scripts
    #[command(flatten)]
    Admin(crate::sieve_admin::SieveAdminCommand),
}

/// Arguments of `postern sieve test`.
#[derive(Debug, clap::Args)]
pub(crate) struct SieveTestArgs {
    /// Print one JSON object instead of text for a person
    #[arg(long)]
    pub json: bool,
    /// The envelope sender (MAIL FROM); empty for the null sender
    #[arg(long, value_name = "ADDR")]
    pub from: String,
    /// The envelope recipient (the account the script belongs to, with its +detail if any)
    #[arg(long, value_name = "ADDR")]
    pub to: String,
    /// The Sieve script
    pub script: PathBuf,
    /// The message (RFC 5322, as it would be delivered)
    pub message: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DomainCommand {
    /// Add a local domain, with postmaster@ and abuse@ (RFC 5321 §4.5.1, RFC 2142) as aliases
    /// of --postmaster, or of the domain's first account when it is added
    Add {
        /// The domain name, e.g. example.org (IDN allowed)
        domain: String,
        /// The account that receives postmaster@ and abuse@ mail (any domain)
        #[arg(long, value_name = "ADDRESS")]
        postmaster: Option<String>,
    },
    /// List local domains
    List,
    /// Remove a local domain (refused while it has accounts or aliases, unless --force)
    Remove {
        /// The domain name
        domain: String,
        /// Also remove its accounts and aliases from the directory (mail stays on disk)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create an account and its Maildir; the password comes from standard input or a prompt
    Add {
        /// The account's address, local@domain, in a local domain
        address: String,
        /// Read an existing password hash instead of a password, to import users from /etc/shadow,
        /// a Dovecot passwd-file or a postfixadmin table: crypt(3) $6$, $5$, $y$, $2b$, $1$ or an
        /// argon2 PHC string, with or without a Dovecot {SCHEME} prefix ({SHA512-CRYPT}, {CRYPT},
        /// {MD5-CRYPT}, ...); or Dovecot {SSHA512}, {SSHA256}, {SSHA}, {SHA512}, {SHA256}, {SHA},
        /// or {PLAIN} (migration only). It becomes argon2id at the user's next login
        #[arg(long)]
        hash: bool,
    },
    /// List accounts (of one domain, or all)
    List {
        /// Only the accounts of this domain
        domain: Option<String>,
    },
    /// Set a new password, from standard input or a prompt
    Passwd {
        /// The account's address
        address: String,
        /// Read an existing password hash instead of a password (the schemes of `user add --hash`)
        #[arg(long)]
        hash: bool,
    },
    /// Set (or with --clear remove) the separate APOP secret used by POP3 APOP
    Apop {
        /// The account's address
        address: String,
        /// Remove the secret: APOP then fails for this account
        #[arg(long)]
        clear: bool,
    },
    /// Refuse every login of an account (mail is still accepted and kept)
    Disable {
        /// The account's address
        address: String,
    },
    /// Allow logins of a disabled account again
    Enable {
        /// The account's address
        address: String,
    },
    /// Set the account's storage quota (e.g. 500M, 2G, 1048576), or `none`
    Quota {
        /// The account's address
        address: String,
        /// Bytes, with an optional K, M, G or T suffix (powers of 1024), or `none`
        size: String,
    },
    /// Remove an account; its mail stays on disk unless --purge
    Remove {
        /// The account's address
        address: String,
        /// Also delete the account's mail
        #[arg(long)]
        purge: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AliasCommand {
    /// Add targets to an alias (`@domain` is a catch-all); several targets make a list
    Add {
        /// The alias address, or @domain for a catch-all
        alias: String,
        /// Where its mail goes: local accounts, other aliases or remote addresses
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// List aliases and their targets
    List,
    /// Remove an alias, or only the targets named
    Remove {
        /// The alias address
        alias: String,
        /// Only these targets (default: all)
        targets: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// List queued messages (mailq style)
    List,
    /// Show one message's envelope, per-recipient state and headers
    Show {
        /// The queue id (as `mailq` lists it)
        id: String,
    },
    /// Make every deferred message due now
    Flush,
    /// Make one message's pending recipients due now
    Retry {
        /// The queue id (as `mailq` lists it)
        id: String,
    },
    /// Give up on a message now and return it to its sender with a failure notice (DSN)
    Bounce {
        /// The queue id (as `mailq` lists it)
        id: String,
    },
    /// Remove a message from the queue without notice to the sender
    Delete {
        /// The queue id (as `mailq` lists it)
        id: String,
    },
    /// Keep a message in the queue without attempting it
    Hold {
        /// The queue id (as `mailq` lists it)
        id: String,
    },
    /// Release a held message (it is attempted at once)
    Release {
        /// The queue id (as `mailq` lists it)
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DkimCommand {
    /// Make an Ed25519 and an RSA-2048 key pair for a domain (selectors SELECTOR-ed25519 and SELECTOR-rsa)
    Generate {
        /// A local domain
        domain: String,
        /// The selector prefix: keys are published at PREFIX-ed25519 and PREFIX-rsa
        #[arg(long, default_value = "postern")]
        selector: String,
    },
    /// List the keys and their DNS records (retired ones too)
    List,
    /// Make new keys under a new selector and retire the current ones: they stop signing
    /// but stay listed until you remove them (keep their DNS records a few days)
    Rotate {
        /// A local domain
        domain: String,
        /// The new selector prefix [default: p<YYYYMMDD>]
        #[arg(long)]
        selector: Option<String>,
    },
    /// Delete a domain's keys of one selector (e.g. postern, or postern-rsa for one algorithm)
    Remove {
        /// The domain
        domain: String,
        /// The selector or selector prefix
        selector: String,
    },
}
