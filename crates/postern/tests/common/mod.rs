//! Helpers for driving the real `postern` binary.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub(crate) mod dnsmasq;
pub(crate) mod unbound;

pub(crate) struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    /// A data directory and a configuration listening on loopback, port 0 for every service.
    pub(crate) fn new() -> Env {
        Env::with_config("")
    }

    /// As `new`, with `extra` TOML appended (a `[listen]` section in it replaces the default one).
    pub(crate) fn with_config(extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("postern.toml");
        let data = dir.path().join("data");
        let listen = if extra.contains("[listen]") {
            String::new()
        } else {
            [
                "smtp",
                "submission",
                "submissions",
                "imap",
                "imaps",
                "pop3",
                "pop3s",
                "managesieve",
            ]
            .iter()
            .map(|s| format!("{s} = [\"127.0.0.1:0\"]\n"))
            .collect::<String>()
        };
        let text = format!(
            "hostname = \"mx.test\"\ndata_dir = \"{}\"\n{extra}\n{}{listen}",
            data.display(),
            if listen.is_empty() { "" } else { "[listen]\n" },
        );
        std::fs::write(&config, text).unwrap();
        Env { dir, config }
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where an account's Maildir lives (documented in the README).
    pub(crate) fn maildir(&self, address: &str) -> PathBuf {
        let (local, domain) = address.rsplit_once('@').unwrap();
        self.data().join("mail").join(domain).join(local)
    }

    pub(crate) fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_postern"));
        c.arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path());
        c.env_remove("POSTERN_CONFIG").env("POSTERN_LOG", "info");
        c
    }

    /// Runs `postern ARGS` with `stdin` as standard input.
    pub(crate) fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_command(self.command().args(args), stdin)
    }

    /// Runs and insists on success; returns standard output.
    pub(crate) fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "postern {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and insists on failure; returns standard error.
    pub(crate) fn fails(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(!out.status.success(), "postern {args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }
}

pub(crate) fn run_command(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails early may close its standard input before reading it.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// A running `postern serve`, killed when dropped (also when a test panics).
pub(crate) struct Running {
    pub child: std::process::Child,
    /// Listening address of each service, read from the log (port 0 resolved).
    pub addrs: std::collections::HashMap<String, std::net::SocketAddr>,
    /// The log lines after "ready".
    pub log: std::sync::mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Env {
    /// Starts `serve` and waits for "ready", collecting every listener's address from the log.
    /// With `POSTERN_TEST_LOG` set, the server's log is echoed to the test's output.
    pub(crate) fn serve(&self) -> Running {
        self.serve_with_env(&[])
    }

    /// As `serve`, with these environment variables set for the server (e.g. `TZ`).
    pub(crate) fn serve_with_env(&self, vars: &[(&str, &str)]) -> Running {
        use std::io::{BufRead, BufReader};
        let mut command = self.command();
        command.envs(vars.iter().copied());
        let mut child = command
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let echo = std::env::var_os("POSTERN_TEST_LOG").is_some();
            // Keeps draining after the receiver is gone, so the server never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("{line}");
                }
                let _ = tx.send(line);
            }
        });
        let mut addrs = std::collections::HashMap::new();
        loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("serve logs 'ready' in time");
            if let Some((head, addr)) = line.split_once(": listening on ") {
                let service = head.rsplit(' ').next().unwrap().to_string();
                let addr = addr.split(' ').next().unwrap().parse().unwrap();
                addrs.insert(service, addr);
            }
            if line.ends_with("ready") {
                break;
            }
        }
        Running {
            child,
            addrs,
            log: rx,
        }
    }
}

/// Whether a program is installed: on PATH, or in /usr/sbin or /sbin, where Debian puts daemons
/// such as dovecot (not on every user's PATH).
pub(crate) fn on_path(cmd: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .any(|d| d.join(cmd).is_file())
}

/// Runs `python3 -c script args...` (killed after 60 s); panics with its output unless it
/// succeeds, and returns its standard output.
pub(crate) fn python(script: &str, args: &[String]) -> String {
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let out = wait_timeout(&mut child, std::time::Duration::from_secs(60));
    assert!(
        out.status.success(),
        "python failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_timeout(child: &mut std::process::Child, t: std::time::Duration) -> std::process::Output {
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > t {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    use std::io::Read;
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_end(&mut stderr);
    }
    std::process::Output {
        status: child.wait().unwrap(),
        stdout,
        stderr,
    }
}

/// The arguments the IMAP client scripts take: host, port, user, password.
pub(crate) fn login_args(addr: std::net::SocketAddr, user: &str, pass: &str) -> Vec<String> {
    vec![
        addr.ip().to_string(),
        addr.port().to_string(),
        user.to_string(),
        pass.to_string(),
    ]
}
