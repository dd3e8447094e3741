//! postern: SMTP, IMAP, POP3, local delivery and the mail store in one program.

mod admin;
mod cli;
mod queue;
mod router;
mod secret;
mod serve;

use clap::Parser;
use cli::{Cli, Command};
use postern_config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postern: {e:#}");
            ExitCode::FAILURE
        }
    }
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
    let filter = EnvFilter::try_from_env("POSTERN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve::run(config),
        Command::CheckConfig => {
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
            Ok(())
        }
        Command::Domain(cmd) => admin::domain(&config, cmd),
        Command::User(cmd) => admin::user(&config, cmd),
        Command::Alias(cmd) => admin::alias(&config, cmd),
        Command::Queue(cmd) => queue::run(&config, cmd),
        Command::Mailq => queue::run(&config, cli::QueueCommand::List),
        Command::Dkim(cmd) => queue::dkim(&config, cmd),
        Command::Dns { domain } => queue::dns(&config, &domain),
        Command::Reindex { address } => admin::reindex(&config, address.as_deref()),
    }
}
