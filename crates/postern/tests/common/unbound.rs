//! A DNSSEC test set-up on loopback: one `unbound` serving the test zones authoritatively
//! (`auth-zone`, signed zones signed with `ldns-signzone` from keys of `ldns-keygen`), and a
//! second `unbound` that validates them (their DS as `trust-anchor-file`) and sets the AD bit
//! for signed data. Names outside the given zones are NXDOMAIN; nothing leaves the machine.
//! Both are killed on drop.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One zone: its name, its records in zone-file syntax (SOA and NS are added), signed or not.
pub(crate) struct Zone {
    pub name: String,
    pub records: String,
    pub signed: bool,
}

pub(crate) struct Unbound {
    auth: Child,
    validator: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        for c in [&mut self.auth, &mut self.validator] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A free UDP port on 127.0.0.1 that is also free for TCP (unbound listens on both).
fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn spawn(dir: &Path, conf: &Path, log: &str) -> Child {
    Command::new("unbound")
        .arg("-d")
        .arg("-c")
        .arg(conf)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .expect("unbound is installed (Debian package unbound)")
}

fn common_server(dir: &Path, port: u16, zones: &[Zone]) -> String {
    let mut s = format!(
        "server:\n  interface: 127.0.0.1@{port}\n  username: \"\"\n  chroot: \"\"\n  directory: \"{}\"\n  pidfile: \"\"\n  do-daemonize: no\n  use-syslog: no\n  logfile: \"\"\n  access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n  local-zone: \"test.\" nodefault\n  local-zone: \".\" static\n",
        dir.display()
    );
    for z in zones {
        s.push_str(&format!("  local-zone: \"{}.\" transparent\n", z.name));
    }
    s
}

impl Unbound {
    /// Signs and serves `zones`; waits until the validator answers.
    pub(crate) fn start(zones: &[Zone]) -> Unbound {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut anchors = String::new();
        for z in zones {
            let file = d.join(format!("{}.zone", z.name));
            std::fs::write(
                &file,
                format!(
                    "$TTL 300\n{n}. IN SOA ns.{n}. hostmaster.{n}. 1 3600 600 86400 300\n{n}. IN NS ns.{n}.\nns.{n}. IN A 127.0.0.1\n{}\n",
                    z.records,
                    n = z.name
                ),
            )
            .unwrap();
            if z.signed {
                let ksk = run(d, "ldns-keygen", &["-a", "ECDSAP256SHA256", "-k", &z.name]);
                let zsk = run(d, "ldns-keygen", &["-a", "ECDSAP256SHA256", &z.name]);
                let (ksk, zsk) = (ksk.trim(), zsk.trim());
                run(
                    d,
                    "ldns-signzone",
                    &["-n", file.to_str().unwrap(), ksk, zsk],
                );
                anchors.push_str(&std::fs::read_to_string(d.join(format!("{ksk}.ds"))).unwrap());
            }
        }
        std::fs::write(d.join("anchors.ds"), &anchors).unwrap();
        let auth_port = free_port();
        let mut auth = common_server(d, auth_port, zones);
        for z in zones {
            let file: PathBuf = d.join(format!(
                "{}.zone{}",
                z.name,
                if z.signed { ".signed" } else { "" }
            ));
            auth.push_str(&format!(
                "auth-zone:\n  name: \"{}\"\n  zonefile: \"{}\"\n  for-downstream: yes\n  for-upstream: no\n",
                z.name,
                file.display()
            ));
        }
        std::fs::write(d.join("auth.conf"), auth).unwrap();
        let port = free_port();
        let mut val = common_server(d, port, zones);
        val.push_str("  module-config: \"validator iterator\"\n");
        if !anchors.is_empty() {
            val.push_str(&format!(
                "  trust-anchor-file: \"{}\"\n",
                d.join("anchors.ds").display()
            ));
        }
        for z in zones {
            val.push_str(&format!(
                "stub-zone:\n  name: \"{}\"\n  stub-addr: 127.0.0.1@{auth_port}\n",
                z.name
            ));
        }
        std::fs::write(d.join("validator.conf"), val).unwrap();
        let auth = spawn(d, &d.join("auth.conf"), "auth.log");
        let validator = spawn(d, &d.join("validator.conf"), "validator.log");
        let u = Unbound {
            auth,
            validator,
            port,
            _dir: dir,
        };
        u.wait_ready(&zones[0].name);
        u
    }

    /// The validator's port on 127.0.0.1 (for `[dns] nameservers`).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Asks the validator for the SOA of `zone` until it answers NOERROR.
    fn wait_ready(&self, zone: &str) {
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in zone.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 6, 0, 1]);
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 4096];
        loop {
            assert!(Instant::now() < deadline, "unbound did not answer in 30 s");
            let _ = sock.send_to(&q, ("127.0.0.1", self.port));
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                if n >= 4 && buf[0] == 0x12 && buf[1] == 0x34 && buf[3] & 0x0f == 0 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
