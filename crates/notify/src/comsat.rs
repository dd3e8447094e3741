//! comsat: the biff notification, one UDP datagram to the `biff` port (512) of 127.0.0.1 per
//! message. comsat(8) reads one-line messages `user@mailbox-offset`, and the BSD and GNU
//! comsats also `user@offset:mailbox-name`, where the name is the file to read the message
//! from. A Maildir message is a file of its own, so the offset is 0 and the name the message's
//! file, as Maildir deliverers that notify comsat do. An account is notified when its local
//! part is a login on this machine (`[notify] comsat_users = "localpart"`).

use crate::Event;
use std::ffi::CString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

/// Where comsat datagrams go.
#[derive(Clone, Copy, Debug)]
pub struct Comsat {
    /// The biff port on 127.0.0.1.
    pub port: u16,
}

impl Comsat {
    /// Sends the datagram for `event` if its account maps to a login.
    pub async fn notify(&self, event: &Event) -> Result<String, String> {
        let Some(login) = login_of(&event.mail.account) else {
            return Ok("the local part is not a login name: no datagram".into());
        };
        let name = login.clone();
        let known = tokio::task::spawn_blocking(move || unix_user_exists(&name))
            .await
            .unwrap_or(false);
        if !known {
            return Ok(format!("no Unix user {login:?}: no datagram"));
        }
        let datagram = datagram(&login, event.mail.path.as_deref());
        let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
        let to = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        socket
            .send_to(&datagram, to)
            .await
            .map_err(|e| format!("sending to {to}: {e}"))?;
        Ok(format!("told {to} for {login}"))
    }
}

/// The local part of `account` when it can be a Unix login (portable name characters; no
/// leading `-`).
pub fn login_of(account: &str) -> Option<String> {
    let (local, _) = account.rsplit_once('@')?;
    let ok = !local.is_empty()
        && local.len() <= 32
        && !local.starts_with('-')
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then(|| local.to_string())
}

/// `user@0:path\n`, or `user@0\n` without a file (comsat then reads the user's spool).
pub fn datagram(login: &str, path: Option<&Path>) -> Vec<u8> {
    let mut out = format!("{login}@0").into_bytes();
    if let Some(p) = path {
        out.push(b':');
        out.extend_from_slice(p.as_os_str().as_encoded_bytes());
    }
    out.push(b'\n');
    out
}

/// Whether the password database (NSS: files, LDAP...) knows `name`.
fn unix_user_exists(name: &str) -> bool {
    let Ok(cname) = CString::new(name) else {
        return false;
    };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed passwd is valid (integers and null pointers); getpwnam_r fills it with
    // pointers into `buf`, which outlives the call, and writes at most `buf.len()` bytes.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    rc == 0 && !result.is_null()
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_delivery::NewMail;

    #[test]
    fn datagrams() {
        assert_eq!(
            datagram("alice", Some(Path::new("/srv/mail/a/new/1.x,U=3"))),
            b"alice@0:/srv/mail/a/new/1.x,U=3\n"
        );
        assert_eq!(datagram("bob", None), b"bob@0\n");
    }

    #[test]
    fn logins() {
        assert_eq!(login_of("alice@example.org").as_deref(), Some("alice"));
        assert_eq!(login_of("first.last@x").as_deref(), Some("first.last"));
        for bad in ["-x@y", "a b@y", "a/b@y", "noat", "@y", "a;rm@y"] {
            assert_eq!(login_of(bad), None, "{bad}");
        }
        assert!(unix_user_exists("root"));
        assert!(!unix_user_exists("no-such-user-postern-test"));
    }

    #[tokio::test]
    async fn sends_to_the_biff_port() {
        let listener = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let event = |account: &str| {
            Event::new(NewMail {
                account: account.into(),
                mailbox: "INBOX".into(),
                uid: 1,
                size: 10,
                sender: None,
                subject: None,
                path: Some("/m/new/1".into()),
            })
        };
        let c = Comsat { port };
        let note = c
            .notify(&event("no-such-user-postern-test@x.test"))
            .await
            .unwrap();
        assert!(note.contains("no Unix user"), "{note}");
        c.notify(&event("root@x.test")).await.unwrap();
        let mut buf = [0u8; 512];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"root@0:/m/new/1\n");
    }
}
