//! Differential test of postern's Sieve against Pigeonhole, the reference: every (script ×
//! message × envelope) case of crates/sieve/tests/corpus runs through Debian's `sieve-test`
//! (package `dovecot-sieve`, which ./test.sh installs) and through `postern sieve test --json`;
//! both results are brought to one shape (tests/sieve_diff) and must be equal, except for the
//! differences corpus/DIFFERENCES.md lists with their reason.
//!
//! Corpus layout: `scripts/*.sieve` (included scripts sit beside them), `messages/*.eml`,
//! and `envelopes.txt` (`NAME FROM TO` per line). sieve-test runs with a private config (the
//! extensions postern supports and Pigeonhole has, `+` as recipient delimiter, an empty mail
//! store so that only INBOX exists), first as a dry run that prints the actions, then, when a
//! vacation reply is among them, again with `-e`, which is when Pigeonhole applies its vacation
//! rules (RFC 5230 §4.5–§4.6, RFC 3834).

mod common;
mod sieve_diff;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The extensions both implement. Pigeonhole 0.5 has no `ereject` (see DIFFERENCES.md).
const PIGEONHOLE_EXTENSIONS: &str = "fileinto reject envelope encoded-character \
    comparator-i;ascii-numeric relational regex imap4flags copy include body variables \
    vacation vacation-seconds subaddress date index mailbox editheader duplicate enotify";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sieve/tests/corpus")
}

struct Envelope {
    name: String,
    from: String,
    to: String,
}

struct Case {
    script: String,
    message: String,
    envelope: usize,
}

/// Files of `dir` ending in `ext`, by name.
fn names(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

fn envelopes(corpus: &Path) -> Vec<Envelope> {
    let text = std::fs::read_to_string(corpus.join("envelopes.txt")).expect("envelopes.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "envelopes.txt: NAME FROM TO, not {l:?}");
            Envelope {
                name: f[0].into(),
                from: f[1].into(),
                to: f[2].into(),
            }
        })
        .collect()
}

/// sieve-test drops to `mail_uid` when run as root (it refuses root itself): then the files
/// it reads and the directories it writes must be open to that user.
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The private world sieve-test runs in.
struct Pigeonhole {
    dir: PathBuf,
    config: PathBuf,
    scripts: PathBuf,
    messages: PathBuf,
    next_store: AtomicUsize,
}

impl Pigeonhole {
    fn new(dir: &Path, corpus: &Path) -> Pigeonhole {
        set_mode(dir, 0o755);
        let scripts = dir.join("scripts");
        let messages = dir.join("messages");
        for (from, to, mode) in [
            (corpus.join("scripts"), &scripts, 0o777),
            (corpus.join("messages"), &messages, 0o755),
        ] {
            std::fs::create_dir(to).unwrap();
            set_mode(to, mode);
            for entry in std::fs::read_dir(&from).unwrap() {
                let entry = entry.unwrap();
                let target = to.join(entry.file_name());
                std::fs::copy(entry.path(), &target).unwrap();
                set_mode(&target, 0o644);
            }
        }
        let run = dir.join("run");
        std::fs::create_dir(&run).unwrap();
        set_mode(&run, 0o777);
        let empty = dir.join("empty-store");
        std::fs::create_dir(&empty).unwrap();
        set_mode(&empty, 0o777);
        let user = if running_as_root() {
            "mail_uid = nobody\nmail_gid = nogroup\nfirst_valid_uid = 0\nfirst_valid_gid = 0\n"
        } else {
            ""
        };
        let config = dir.join("dovecot.conf");
        std::fs::write(
            &config,
            format!(
                "{user}base_dir = {run}\nlog_path = /dev/stderr\n\
                 mail_location = maildir:{empty}\nrecipient_delimiter = +\n\
                 plugin {{\n  sieve = file:{scripts}\n  sieve_global = {scripts}\n  \
                 sieve_extensions = {PIGEONHOLE_EXTENSIONS}\n}}\n",
                run = run.display(),
                empty = empty.display(),
                scripts = scripts.display(),
            ),
        )
        .unwrap();
        set_mode(&config, 0o644);
        Pigeonhole {
            dir: dir.to_path_buf(),
            config,
            scripts,
            messages,
            next_store: AtomicUsize::new(0),
        }
    }

    fn sieve_test(
        &self,
        case: &Case,
        env: &Envelope,
        exec_store: Option<&Path>,
    ) -> (i32, String, String) {
        let mut cmd = Command::new("sieve-test");
        cmd.arg("-c").arg(&self.config).arg("-C");
        if let Some(store) = exec_store {
            cmd.arg("-e")
                .arg("-o")
                .arg(format!("mail_location=maildir:{}", store.display()));
        }
        // -r is the final recipient, the one vacation checks the headers for (without it
        // sieve-test uses recipient@example.com there).
        cmd.args(["-f", &env.from, "-a", &env.to, "-r", &env.to])
            .arg(self.scripts.join(&case.script))
            .arg(self.messages.join(&case.message))
            .current_dir(&self.dir);
        let out = cmd
            .output()
            .expect("sieve-test runs (apt-get install dovecot-sieve)");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A fresh Maildir with these mailboxes in it (Maildir++: `.NAME`), for one `-e` run.
    fn store_with(&self, mailboxes: &[String]) -> PathBuf {
        let n = self.next_store.fetch_add(1, Ordering::SeqCst);
        let store = self.dir.join(format!("store-{n}"));
        for sub in ["", "/cur", "/new", "/tmp"] {
            std::fs::create_dir_all(format!("{}{sub}", store.display())).unwrap();
        }
        for mailbox in mailboxes.iter().filter(|m| !m.contains('/')) {
            for sub in ["cur", "new", "tmp"] {
                std::fs::create_dir_all(store.join(format!(".{mailbox}")).join(sub)).unwrap();
            }
        }
        if running_as_root() {
            let status = Command::new("chmod")
                .args(["-R", "a+rwx"])
                .arg(&store)
                .status()
                .unwrap();
            assert!(status.success());
        }
        store
    }

    fn run(&self, case: &Case, env: &Envelope) -> Result<Value, String> {
        let (code, stdout, stderr) = self.sieve_test(case, env, None);
        let mut dry = sieve_diff::from_pigeonhole_dry(&stdout, &stderr, code)?;
        if dry.value.to_string().contains("\"vacation\"") {
            let store = self.store_with(&dry.mailboxes);
            let (_, _, exec_err) = self.sieve_test(case, env, Some(&store));
            sieve_diff::confirm_vacation(&mut dry.value, &exec_err);
        }
        Ok(dry.value)
    }
}

/// Whether a script can tell one envelope from another: only the `envelope` test, `vacation`
/// (its sender and recipient checks, RFC 5230 §4.5–§4.6) and an included script (which may use
/// either) read it. The others run with the first envelope only, which keeps the test quick.
fn sees_envelope(script: &str) -> bool {
    ["envelope", "vacation", "include"]
        .iter()
        .any(|word| script.contains(word))
}

fn postern(env: &common::Env, dir: &Path, case: &Case, e: &Envelope) -> Result<Value, String> {
    let out = env
        .command()
        .args(["sieve", "test", "--json", "--from", &e.from, "--to", &e.to])
        .arg(dir.join("scripts").join(&case.script))
        .arg(dir.join("messages").join(&case.message))
        .output()
        .map_err(|e| format!("postern: {e}"))?;
    sieve_diff::from_postern(&String::from_utf8_lossy(&out.stdout), out.status.success())
}

#[test]
fn sieve_matches_pigeonhole() {
    assert!(
        common::on_path("sieve-test"),
        "sieve-test is missing: ./test.sh installs it (apt-get install dovecot-sieve)"
    );
    let corpus = corpus();
    let accepted = sieve_diff::accepted(
        &std::fs::read_to_string(corpus.join("DIFFERENCES.md")).expect("DIFFERENCES.md"),
    )
    .unwrap();
    let envelopes = envelopes(&corpus);
    let scripts = names(&corpus.join("scripts"), ".sieve");
    let messages = names(&corpus.join("messages"), ".eml");
    assert!(!scripts.is_empty() && !messages.is_empty() && !envelopes.is_empty());

    let env = common::Env::new();
    let work = tempfile::tempdir().unwrap();
    let pigeonhole = Pigeonhole::new(work.path(), &corpus);

    let mut cases = Vec::new();
    for script in &scripts {
        let text = std::fs::read_to_string(corpus.join("scripts").join(script)).unwrap();
        let envelope_count = if sees_envelope(&text) {
            envelopes.len()
        } else {
            1
        };
        for message in &messages {
            for envelope in 0..envelope_count {
                cases.push(Case {
                    script: script.clone(),
                    message: message.clone(),
                    envelope,
                });
            }
        }
    }
    // Whether a script compiles does not depend on the message: a script that does not compile
    // on one side or both is checked (and reported) once, not once per message.
    let skip_script: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let differences: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let used: Mutex<Vec<bool>> = Mutex::new(vec![false; accepted.len()]);
    let next = AtomicUsize::new(0);
    let ran = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        // sieve-test spends more than half its time waiting: more runs than cores keep them busy.
        for _ in 0..6 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                if skip_script.lock().unwrap().contains(&case.script) {
                    continue;
                }
                let e = &envelopes[case.envelope];
                ran.fetch_add(1, Ordering::SeqCst);
                let theirs = pigeonhole.run(case, e);
                let ours = postern(&env, work.path(), case, e);
                let (theirs, ours) = match (theirs, ours) {
                    (Ok(t), Ok(o)) => (t, o),
                    (t, o) => {
                        differences.lock().unwrap().push(format!(
                            "{} × {} × {}: a side failed: pigeonhole {t:?}, postern {o:?}",
                            case.script, case.message, e.name
                        ));
                        continue;
                    }
                };
                if theirs["compiles"] == false || ours["compiles"] == false {
                    skip_script.lock().unwrap().push(case.script.clone());
                }
                if theirs == ours {
                    continue;
                }
                let hit = accepted
                    .iter()
                    .position(|a| a.covers(&case.script, &case.message, &e.name));
                if let Some(k) = hit {
                    used.lock().unwrap()[k] = true;
                    continue;
                }
                differences.lock().unwrap().push(format!(
                    "{} × {} × {} (from {} to {}):\n  pigeonhole {theirs}\n  postern    {ours}",
                    case.script, case.message, e.name, e.from, e.to
                ));
            });
        }
    });
    let used = used.into_inner().unwrap();
    for (a, used) in accepted.iter().zip(used) {
        if !used {
            eprintln!(
                "DIFFERENCES.md: `{}` `{}` `{}` no longer differs",
                a.script, a.message, a.envelope
            );
        }
    }
    let mut differences = differences.into_inner().unwrap();
    differences.sort();
    eprintln!(
        "{} cases ({} run, the others are scripts that do not compile) in {:.1} s, \
         {} unexplained differences",
        cases.len(),
        ran.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64(),
        differences.len()
    );
    assert!(
        differences.is_empty(),
        "postern and Pigeonhole differ (fix it, or list it with its reason in \
         crates/sieve/tests/corpus/DIFFERENCES.md):\n{}",
        differences.join("\n")
    );
}
