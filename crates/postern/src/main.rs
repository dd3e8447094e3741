//! postern: SMTP, IMAP, POP3, local delivery and the mail store in one program.
//!
//! The binary is wiring: CLI, configuration, the choice of backends (SQLite directory, Maildir
//! store, file spool) and signals. Protocol logic lives in the library crates, never here.

mod admin;
mod aliases_file;
mod arc_seal;
mod cert_check;
mod cli;
mod control;
mod daily;
mod deliver;
mod dmarc_cmd;
mod dmarc_reports;
mod fetch;
mod lmtp;
mod mailq;
mod notify_cmd;
mod private_data;
mod privileges;
mod queue;
mod router;
mod secret;
mod serve;
mod server_lock;
mod sieve_admin;
mod sieve_check;
mod sieve_test;
mod submit;
mod tls_report;
mod tls_reports;
mod transfer_cmd;

use anyhow::Context as _;
use clap::Parser;
use cli::{Cli, Command};
use postern_config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    // sendmail, mailq, newaliases (by name, or `postern sendmail`): no logging, no runtime.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = submit::dispatch(&args) {
        return code;
    }
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // The LDA's usage errors are sysexits' EX_USAGE, as MTAs expect.
        Err(e) if e.use_stderr() && deliver::invoked(&std::env::args().collect::<Vec<_>>()) => {
            return deliver::usage_error(&e)
        }
        Err(e) => e.exit(),
    };
    if let Command::Sendmail { args } = &cli.command {
        return submit::client::main(
            "sendmail",
            submit::options::Mode::Deliver,
            args,
            cli.config.clone(),
        );
    }
    if !matches!(cli.command, Command::Serve) {
        // A command whose output goes to `head` ends quietly when the pipe closes, as Unix
        // tools do, instead of panicking in println!. serve keeps ignoring SIGPIPE.
        // SAFETY: restoring a signal's default disposition before any thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // Mail, the spool, keys and the directory database are created private (0600/0700),
    // whatever umask the process was started with.
    private_data::restrict_umask();
    // The LDA speaks sysexits codes and keeps its own quiet log.
    if let Command::Deliver(args) = &cli.command {
        return deliver::main(cli.config.as_deref(), args);
    }
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postern: {}", describe_error(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, each said once: most of our errors already include their source
/// in their message, which `{:#}` would repeat.
pub fn describe_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Every login hashes with argon2 (19 MiB of working memory). glibc's malloc raises its mmap
/// threshold after the first such buffer is freed, so later ones come from the heap arenas and
/// stay resident: a few hundred logins would pin hundreds of MiB. A fixed threshold keeps large
/// buffers mmapped, and returned to the system when freed.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc tuning parameter; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    // rustls warns about clients' TLS mistakes (an IP address sent as SNI, say): not the
    // admin's to fix, so only its errors are shown unless POSTERN_LOG asks for more.
    let filter = EnvFilter::try_from_env("POSTERN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,rustls=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    if cli.verbose {
        let source = match &config.source {
            postern_config::Source::File(p) => p.display().to_string(),
            postern_config::Source::Defaults => "none (built-in defaults)".to_string(),
        };
        eprintln!(
            "postern: configuration {source}, data_dir {}",
            config.data_dir.display()
        );
    }
    match cli.command {
        Command::Serve => return serve::run(config),
        Command::CheckConfig => return check_config(&config),
        Command::FixPermissions => return fix_permissions(&config),
        Command::Reload => return reload(&config),
        Command::InstallLinks { dir, force } => return submit::links::install(&dir, force),
        // Touches nothing in data_dir: runs as whoever calls it.
        Command::Sieve(cli::SieveCommand::Test(args)) => return sieve_test::run(&config, &args),
        _ => {}
    }
    // Admin commands create files beside the running server (a new account's Maildir, the
    // database's journal): as root, they become the server's user first, so that the
    // server can still write everything.
    if privileges::current_uid() == 0 {
        if let Some(user) = &config.server.user {
            let who = privileges::resolve(user, config.server.group.as_deref())?;
            privileges::ensure_dir_for(&config.data_dir, Some(&who))?;
            privileges::drop_to(&who)?;
        }
    }
    match cli.command {
        Command::Domain(cmd) => admin::domain(&config, cmd),
        Command::User(cmd) => admin::user(&config, cmd),
        Command::Alias(cmd) => admin::alias(&config, cmd),
        Command::Queue(cmd) => queue::run(&config, cmd),
        Command::Mailq => mailq::run(&config),
        Command::Newaliases { file } => aliases_file::run(&config, file.as_deref()),
        Command::Dkim(cmd) => queue::dkim(&config, cmd),
        Command::Dns { domain } => queue::dns(&config, &domain),
        Command::Reindex { address } => admin::reindex(&config, address.as_deref()),
        Command::Kick { address } => admin::kick(&config, &address),
        Command::Sieve(cli::SieveCommand::Admin(cmd)) => sieve_admin::sieve(&config, cmd),
        Command::Vacation(args) => sieve_admin::vacation(&config, args),
        Command::Notify(cmd) => notify_cmd::run(&config, cmd),
        Command::Import(cmd) => transfer_cmd::import(&config, cmd),
        Command::Export(args) => transfer_cmd::export(&config, args),
        Command::Fetch(cmd) => fetch::cli::run(&config, cmd),
        Command::Dmarc(cmd) => dmarc_cmd::run(&config, cmd),
        Command::TlsReport {
            domain,
            json,
            send,
            date,
        } => tls_report::run(&config, &domain, json, send, date.as_deref()),
        Command::Serve
        | Command::CheckConfig
        | Command::FixPermissions
        | Command::Reload
        | Command::Sieve(cli::SieveCommand::Test(_))
        | Command::Deliver(_)
        | Command::Sendmail { .. }
        | Command::InstallLinks { .. } => {
            unreachable!("handled above")
        }
    }
}

/// `reload`: SIGHUP to the serve that holds the data directory's lock.
fn reload(config: &Config) -> anyhow::Result<()> {
    let Some(pid) = server_lock::running_pid(&config.data_dir)? else {
        anyhow::bail!(
            "no postern serve is running on {} (nothing holds {})",
            config.data_dir.display(),
            server_lock::path_in(&config.data_dir).display()
        );
    };
    let pid_t = libc::pid_t::try_from(pid)?;
    // SAFETY: kill with a PID read from the lock its holder keeps while it runs.
    if unsafe { libc::kill(pid_t, libc::SIGHUP) } != 0 {
        anyhow::bail!(
            "cannot signal serve (pid {pid}): {}",
            std::io::Error::last_os_error()
        );
    }
    println!("asked serve (pid {pid}) to reload; its log says whether it did");
    Ok(())
}

/// `check-config`: the effective settings on standard output, warnings on standard error.
fn check_config(config: &Config) -> anyhow::Result<()> {
    config.check_files()?;
    match &config.source {
        postern_config::Source::File(p) => {
            println!("# configuration read from {}", p.display())
        }
        postern_config::Source::Defaults => {
            println!("# no configuration file found: built-in defaults");
            println!("# (privileged ports fall back to port + 10000 when serve cannot bind them)");
        }
    }
    print!("{}", config.to_toml());
    // What serve would refuse, refused here too.
    if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
        postern_net::load_or_generate(
            Some(cert),
            Some(key),
            &config.generated_tls_dir(),
            &config.hostname,
        )?;
    }
    let owner = match (&config.server.user, privileges::current_uid()) {
        (Some(user), 0) => privileges::resolve(user, config.server.group.as_deref())?.uid,
        _ => privileges::current_uid(),
    };
    private_data::refuse_unsafe(&config.data_dir, owner)?;
    writable_data_dir(&config.data_dir)?;
    let mut warnings = Vec::new();
    if !config.hostname.contains('.') {
        warnings.push(format!(
            "hostname {:?} is not a fully qualified domain name: other servers check the \
             EHLO name and the certificate against it (set hostname = \"mail.example.org\")",
            config.hostname
        ));
    }
    let cert = config
        .tls
        .cert
        .clone()
        .unwrap_or_else(|| config.generated_tls_dir().join("cert.pem"));
    if cert.exists() {
        warnings.extend(cert_check::check_file(&cert, &config.hostname));
    }
    if (config.aliases.allow_commands || config.aliases.allow_files)
        && config.server.user.is_none()
        && privileges::current_uid() == 0
    {
        warnings.push(
            "[aliases] allows command or file targets and serve would run as root (no [server] \
             user): they would run and write as root"
                .to_string(),
        );
    }
    if let Some(path) = config.relay.as_ref().and_then(|r| r.password_file.as_ref()) {
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata(path).is_ok_and(|m| m.mode() & 0o077 != 0) {
            warnings.push(format!(
                "relay.password_file {} can be read by other users: chmod 600 it",
                path.display()
            ));
        }
    }
    let findings = private_data::audit(&config.data_dir, owner, private_data::Depth::Everything)
        .with_context(|| {
            format!(
                "data_dir {}: checking permissions",
                config.data_dir.display()
            )
        })?;
    for f in findings.iter().take(20) {
        warnings.push(f.to_string());
    }
    if findings.len() > 20 {
        warnings.push(format!("... and {} more such paths", findings.len() - 20));
    }
    if !findings.is_empty() {
        warnings.push("repair with: postern fix-permissions".to_string());
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

/// serve creates and writes everything in data_dir: it (or, before the first start, the
/// directory it will be made in) must be writable by this user.
fn writable_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let target = if data_dir.exists() {
        data_dir.to_path_buf()
    } else {
        match data_dir.ancestors().skip(1).find(|p| p.exists()) {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        }
    };
    let c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())?;
    // SAFETY: access only reads the NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        anyhow::bail!(
            "data_dir {}: {} is not writable by user {}: {}",
            data_dir.display(),
            target.display(),
            privileges::current_user_name(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// `fix-permissions`: strips group and other permissions under data_dir; as root, also
/// gives every path to `[server] user` (or to root when serve runs as root).
fn fix_permissions(config: &Config) -> anyhow::Result<()> {
    let uid = privileges::current_uid();
    let chown_to = match (&config.server.user, uid) {
        (Some(user), 0) => {
            let who = privileges::resolve(user, config.server.group.as_deref())?;
            Some((who.uid, who.gid))
        }
        // Root serving as root: files of other users in the tree become root's.
        // SAFETY: getgid has no preconditions.
        (None, 0) => Some((0, unsafe { libc::getgid() })),
        _ => None,
    };
    let r = private_data::fix(&config.data_dir, uid, chown_to)?;
    println!(
        "{}: {} mode(s) and {} owner(s) repaired",
        config.data_dir.display(),
        r.modes,
        r.owners
    );
    for f in &r.left {
        eprintln!("warning: left alone: {f}");
    }
    if r.left.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} path(s) need a manual fix", r.left.len())
    }
}
