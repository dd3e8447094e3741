//! Local submission: the `sendmail` command (also `mailq` and `newaliases` by program name) and
//! its server side in `serve`.
//!
//! No setgid helper: postern is one large binary that parses TOML and opens databases, too much
//! to run with a privileged group. Instead:
//! * `data_dir` is 0711 (others may only traverse it), `data_dir/public/` 0711 holds
//!   `submit.sock` (0666) and `maildrop/` (1733: others may create files there, not list or read
//!   it). Everything else stays 0700/0600.
//! * When `serve` runs, `sendmail` sends its request over `submit.sock`; the server asks the
//!   kernel who is calling (SO_PEERCRED), so the identity cannot be forged.
//! * When it does not, `sendmail` writes the same request into `maildrop/` under a random
//!   128-bit name (`NAME.tmp`, fsynced, renamed to `NAME`, then the file system synced, since an
//!   unprivileged user cannot open the directory to fsync it); the file's owner, as the kernel
//!   records it, is the identity. `serve` picks the files up at start, every
//!   `[sendmail] pickup_interval_secs`, and on a `PICKUP` request.
//! * Both paths end in [`compose::prepare`]: the sender policy (`[sendmail] trusted_users`,
//!   `trusted_groups`), the added header fields, the limits.
//!
//! Exit codes follow sysexits.h; errors go to standard error in plain words.

pub(crate) mod bs;
pub(crate) mod client;
pub(crate) mod compose;
pub(crate) mod links;
pub(crate) mod maildrop;
pub(crate) mod options;
pub(crate) mod request;
pub(crate) mod server;
pub(crate) mod users;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// sysexits.h: the command was used incorrectly.
pub(crate) const EX_USAGE: u8 = 64;
/// sysexits.h: the input data was incorrect.
pub(crate) const EX_DATAERR: u8 = 65;
/// sysexits.h: a user does not exist.
pub(crate) const EX_NOUSER: u8 = 67;
/// sysexits.h: a service is unavailable.
pub(crate) const EX_UNAVAILABLE: u8 = 69;
/// sysexits.h: an internal software error.
pub(crate) const EX_SOFTWARE: u8 = 70;
/// sysexits.h: a file cannot be created.
pub(crate) const EX_CANTCREAT: u8 = 73;
/// sysexits.h: a temporary failure; the caller should try again later.
pub(crate) const EX_TEMPFAIL: u8 = 75;
/// sysexits.h: not permitted.
pub(crate) const EX_NOPERM: u8 = 77;
/// sysexits.h: a configuration error.
pub(crate) const EX_CONFIG: u8 = 78;

/// A refusal with its sysexits code and the words for standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: u8,
    pub text: String,
}

impl Refusal {
    pub(crate) fn new(code: u8, text: impl Into<String>) -> Refusal {
        Refusal {
            code,
            text: text.into(),
        }
    }
}

/// `data_dir/public`: what local users may reach.
pub(crate) fn public_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("public")
}

/// The submission socket.
pub(crate) fn socket_path(data_dir: &Path) -> PathBuf {
    public_dir(data_dir).join("submit.sock")
}

/// The maildrop, for messages written while `serve` does not run.
pub(crate) fn maildrop_dir(data_dir: &Path) -> PathBuf {
    public_dir(data_dir).join("maildrop")
}

/// Where maildrop files that cannot be queued are kept for the administrator.
pub(crate) fn maildrop_bad_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("maildrop-bad")
}

/// The program name's last component.
fn program_name(argv0: &OsString) -> String {
    Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Called first by `main`: runs `sendmail`, `mailq` or `newaliases` when the program was called
/// by one of those names, or as `postern [--config FILE] sendmail ...`; `None` otherwise (the
/// normal command line follows). Nothing here starts a runtime or logging it does not need.
pub(crate) fn dispatch(args: &[OsString]) -> Option<ExitCode> {
    let prog = program_name(args.first()?);
    let strings = || -> Option<Vec<String>> {
        args[1..]
            .iter()
            .map(|a| a.clone().into_string().ok())
            .collect()
    };
    let env_config = std::env::var_os("POSTERN_CONFIG").map(PathBuf::from);
    match prog.as_str() {
        "sendmail" => {
            let Some(rest) = strings() else {
                eprintln!("sendmail: arguments must be UTF-8");
                return Some(ExitCode::from(EX_USAGE));
            };
            return Some(client::main(
                "sendmail",
                options::Mode::Deliver,
                &rest,
                env_config,
            ));
        }
        "mailq" => {
            let rest = strings().unwrap_or_default();
            return Some(client::main(
                "mailq",
                options::Mode::Mailq,
                &rest,
                env_config,
            ));
        }
        "newaliases" => {
            let rest = strings().unwrap_or_default();
            return Some(client::main(
                "newaliases",
                options::Mode::Newaliases,
                &rest,
                env_config,
            ));
        }
        _ => {}
    }
    // postern [-c FILE | --config FILE | --config=FILE | -v]... sendmail ARGS
    let mut config = env_config;
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_str()?;
        match a {
            "-c" | "--config" => {
                config = Some(PathBuf::from(args.get(i + 1)?));
                i += 2;
            }
            "-v" | "--verbose" => i += 1,
            "sendmail" => {
                let rest: Vec<String> = args[i + 1..]
                    .iter()
                    .map(|a| a.clone().into_string().ok())
                    .collect::<Option<_>>()?;
                return Some(client::main(
                    "sendmail",
                    options::Mode::Deliver,
                    &rest,
                    config,
                ));
            }
            _ => {
                if let Some(path) = a.strip_prefix("--config=") {
                    config = Some(PathBuf::from(path));
                    i += 1;
                } else {
                    return None;
                }
            }
        }
    }
    None
}
