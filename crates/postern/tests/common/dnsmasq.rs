//! A DNS server for tests: dnsmasq on 127.0.0.1, a free port, answering only the records given
//! (everything else under the zones of `LOCAL_ZONES` is NXDOMAIN), killed on drop. Point
//! postern's `[dns] nameservers` at `127.0.0.1:<port()>`.

use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Zones dnsmasq answers alone (NXDOMAIN for unknown names, never "no server").
pub(crate) const LOCAL_ZONES: &[&str] = &["test", "example", "in-addr.arpa", "ip6.arpa"];

/// One record.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    /// TXT (split into strings of at most 255 octets).
    Txt(String, String),
    /// A/AAAA and the matching PTR.
    Host(String, IpAddr),
    /// A PTR only.
    Ptr(IpAddr, String),
    /// MX: name, preference, exchange.
    Mx(String, u16, String),
    /// A CNAME.
    Cname(String, String),
}

impl Record {
    pub(crate) fn txt(name: &str, text: &str) -> Record {
        Record::Txt(name.into(), text.into())
    }
    pub(crate) fn host(name: &str, ip: &str) -> Record {
        Record::Host(name.into(), ip.parse().expect("an IP address"))
    }
    pub(crate) fn ptr(ip: &str, name: &str) -> Record {
        Record::Ptr(ip.parse().expect("an IP address"), name.into())
    }
    pub(crate) fn mx(name: &str, pref: u16, exchange: &str) -> Record {
        Record::Mx(name.into(), pref, exchange.into())
    }
}

fn arpa(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut out = String::new();
            for b in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}

fn quoted(text: &str) -> String {
    text.as_bytes()
        .chunks(255)
        .map(|c| {
            let s = String::from_utf8_lossy(c)
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            format!("\"{s}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The conf-file lines of `records`.
pub(crate) fn conf(records: &[Record]) -> String {
    let mut out = String::new();
    for z in LOCAL_ZONES {
        out.push_str(&format!("local=/{z}/\n"));
    }
    for r in records {
        let line = match r {
            Record::Txt(name, text) if text.is_empty() => format!("txt-record={name},\"\""),
            Record::Txt(name, text) => format!("txt-record={name},{}", quoted(text)),
            Record::Host(name, ip) => format!("host-record={name},{ip}"),
            Record::Ptr(ip, name) => format!("ptr-record={},{name}", arpa(*ip)),
            Record::Mx(name, pref, exchange) => format!("mx-host={name},{exchange},{pref}"),
            Record::Cname(name, target) => format!("cname={name},{target}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A running dnsmasq.
pub(crate) struct Dnsmasq {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where dnsmasq is (Debian: /usr/sbin, often not on PATH).
pub(crate) fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("dnsmasq"))
        .find(|p| p.is_file())
}

impl Dnsmasq {
    /// Starts dnsmasq serving `records`; panics (with dnsmasq's words) if it cannot.
    pub(crate) fn start(records: &[Record]) -> Dnsmasq {
        Dnsmasq::start_with(records, &[])
    }

    /// As `start`, logging every query it receives (`query[TXT] name from ...`) to `log`.
    pub(crate) fn start_logged(records: &[Record], log: &std::path::Path) -> Dnsmasq {
        Dnsmasq::start_with(
            records,
            &[
                "--log-queries".to_string(),
                format!("--log-facility={}", log.display()),
            ],
        )
    }

    fn start_with(records: &[Record], extra: &[String]) -> Dnsmasq {
        let bin = binary().expect("dnsmasq is installed (Debian package dnsmasq-base)");
        let dir = tempfile::tempdir().unwrap();
        let conf_path = dir.path().join("dnsmasq.conf");
        std::fs::write(&conf_path, conf(records)).unwrap();
        // A free UDP port (dnsmasq binds TCP on it too; retried if that one is taken).
        for _ in 0..20 {
            let port = UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .unwrap()
                .port();
            let mut child = Command::new(&bin)
                .args([
                    "--keep-in-foreground",
                    "--no-resolv",
                    "--no-hosts",
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--user=root",
                    "--cache-size=0",
                ])
                .args(extra)
                .arg(format!("--port={port}"))
                .arg(format!("--pid-file={}", dir.path().join("pid").display()))
                .arg(format!("--conf-file={}", conf_path.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("dnsmasq starts");
            if ready(port, &mut child) {
                return Dnsmasq {
                    child,
                    port,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            if !err.contains("Address already in use") {
                panic!("dnsmasq did not start: {err}");
            }
        }
        panic!("dnsmasq found no free port");
    }

    /// The UDP/TCP port on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `"127.0.0.1:<port>"`, for `[dns] nameservers`.
    pub(crate) fn nameserver(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Waits until dnsmasq answers a query (or exits).
fn ready(port: u16, child: &mut Child) -> bool {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // A query for "ready.test." TXT.
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["ready", "test"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 16, 0, 1]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let _ = sock.send_to(&q, ("127.0.0.1", port));
        let mut buf = [0u8; 512];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if n >= 2 && buf[..2] == [0x12, 0x34] {
                return true;
            }
        }
    }
    false
}
