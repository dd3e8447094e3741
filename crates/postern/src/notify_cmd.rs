//! `postern notify test ADDRESS`: runs the `[notify]` hooks that apply to an account once, with
//! a made-up event, and says how each went, so an admin can try a webhook or a command before
//! mail arrives. It runs as the server's user (as serve runs the hooks).

use anyhow::Context as _;
use postern_config::Config;
use postern_delivery::NewMail;

/// `postern notify ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum NotifyCommand {
    /// Run the hooks that apply to ADDRESS once, now, with a test event (UID 0, no file), and
    /// print each one's outcome; exits 1 if any failed
    Test {
        /// The account (user@domain)
        address: String,
        /// The mailbox the event names
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
        /// The subject the event carries
        #[arg(long, default_value = "postern notify test")]
        subject: String,
    },
}

pub(crate) fn run(config: &Config, cmd: NotifyCommand) -> anyhow::Result<()> {
    let NotifyCommand::Test {
        address,
        mailbox,
        subject,
    } = cmd;
    if !address.contains('@') {
        anyhow::bail!("{address:?} is not an address (user@domain)");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let results = runtime.block_on(async {
        let Some(hub) = postern_notify::Hub::from_config(&config.notify)? else {
            return Ok::<_, anyhow::Error>(None);
        };
        let mail = NewMail {
            account: address.to_ascii_lowercase(),
            mailbox,
            uid: 0,
            size: 0,
            sender: None,
            subject: Some(subject),
            path: None,
        };
        Ok(Some(hub.test(mail).await))
    })?;
    let Some(results) = results else {
        println!("no hook is configured in [notify]");
        return Ok(());
    };
    if results.is_empty() {
        println!("no [notify] hook applies to {address}");
        return Ok(());
    }
    let mut failed = 0;
    for (what, result) in &results {
        match result {
            Ok(note) => println!("{what}: ok ({note})"),
            Err(reason) => {
                failed += 1;
                println!("{what}: FAILED: {reason}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} hook(s) failed", results.len());
    }
    Ok(())
}
