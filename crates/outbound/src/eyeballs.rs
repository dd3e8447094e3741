//! Happy eyeballs for SMTP (RFC 8305 where it applies): the addresses of one MX host are
//! tried IPv6 and IPv4 interleaved, and a connection attempt to the next address starts when
//! the previous one has not connected within [`ATTEMPT_DELAY`] (or has failed); the first
//! connection established wins and the others are dropped.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// RFC 8305 §5: the recommended Connection Attempt Delay.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// RFC 8305 §4: the addresses interleaved by family, the first family first (IPv6 when the
/// resolver gave one), each family in the order given.
pub fn interleave(ips: Vec<IpAddr>) -> Vec<IpAddr> {
    let first_v6 = ips.iter().any(IpAddr::is_ipv6);
    let (v6, v4): (Vec<IpAddr>, Vec<IpAddr>) = ips.into_iter().partition(IpAddr::is_ipv6);
    let (a, b) = if first_v6 { (v6, v4) } else { (v4, v6) };
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// RFC 8305 §5: races connections to `addrs` (in order), starting the next attempt `delay`
/// after the previous one or as soon as it fails, each attempt bounded by `timeout`. The
/// winner and its stream, or every address's failure.
pub async fn race(
    addrs: &[SocketAddr],
    delay: Duration,
    timeout: Duration,
) -> Result<(SocketAddr, TcpStream), Vec<(SocketAddr, String)>> {
    let mut tasks: JoinSet<(SocketAddr, Result<TcpStream, String>)> = JoinSet::new();
    let mut failures: HashMap<SocketAddr, String> = HashMap::new();
    let mut next = 0;
    let start = |tasks: &mut JoinSet<_>, addr: SocketAddr| {
        tasks.spawn(async move {
            let r = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => Ok(s),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("connect timed out".to_string()),
            };
            (addr, r)
        });
    };
    loop {
        if tasks.is_empty() {
            if next >= addrs.len() {
                let mut out: Vec<(SocketAddr, String)> = failures.into_iter().collect();
                out.sort_by_key(|(a, _)| addrs.iter().position(|x| x == a));
                return Err(out);
            }
            start(&mut tasks, addrs[next]);
            next += 1;
        }
        let timer = tokio::time::sleep(delay);
        tokio::select! {
            done = tasks.join_next() => match done {
                Some(Ok((addr, Ok(stream)))) => {
                    tasks.abort_all();
                    return Ok((addr, stream));
                }
                Some(Ok((addr, Err(e)))) => {
                    failures.insert(addr, e);
                    // §5: a failed attempt starts the next one at once.
                    if next < addrs.len() {
                        start(&mut tasks, addrs[next]);
                        next += 1;
                    }
                }
                Some(Err(_)) | None => {}
            },
            _ = timer, if next < addrs.len() => {
                start(&mut tasks, addrs[next]);
                next += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_interleaved() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            interleave(vec![ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1")]),
            vec![ip("2001:db8::1"), ip("192.0.2.1"), ip("192.0.2.2")]
        );
        assert_eq!(
            interleave(vec![ip("2001:db8::1"), ip("2001:db8::2"), ip("192.0.2.1")]),
            vec![ip("2001:db8::1"), ip("192.0.2.1"), ip("2001:db8::2")]
        );
        assert_eq!(interleave(vec![ip("192.0.2.1")]), vec![ip("192.0.2.1")]);
        assert!(interleave(vec![]).is_empty());
    }

    #[tokio::test]
    async fn a_refused_address_starts_the_next_at_once() {
        // A port with nothing listening refuses; the listener behind it wins.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open_addr = open.local_addr().unwrap();
        let (winner, _s) = race(
            &[closed_addr, open_addr],
            Duration::from_secs(3600),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert_eq!(winner, open_addr);
        let all_closed = race(&[closed_addr], ATTEMPT_DELAY, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert_eq!(all_closed.len(), 1);
        assert_eq!(all_closed[0].0, closed_addr);
    }
}
