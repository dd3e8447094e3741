//! DNSSEC-aware lookups for DANE (RFC 7672 §2.1): a query sent with the AD bit set (RFC 6840
//! §5.7) and EDNS0 DO, whose answer counts as validated only when `[dns] dnssec = "trust-ad"`
//! and the configured resolver set AD in its reply (RFC 4035 §3.2.3). The resolver must be a
//! local validating one: nothing protects the bit between it and us.

use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use postern_config::{Dns, Dnssec};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// An answer and whether the resolver vouched for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureAnswer {
    /// The records of the asked type at the asked name (after any CNAME the resolver followed).
    pub records: Vec<RData>,
    /// The name does not exist (NXDOMAIN); `records` is then empty.
    pub nxdomain: bool,
    /// The resolver set AD and `[dns] dnssec = "trust-ad"`: the answer (or its denial) is
    /// DNSSEC-validated.
    pub secure: bool,
    /// The smallest TTL of the answer, for caching (300 s for denials, RFC 2308).
    pub ttl: Duration,
}

/// Why a secure lookup gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecureError {
    /// SERVFAIL (a validating resolver's answer to bogus data), time-outs, network errors.
    #[error("{0}")]
    Failed(String),
}

/// The name servers secure lookups go to: those of `[dns]`, else the system's.
fn servers(dns: &Dns) -> Result<Vec<SocketAddr>, SecureError> {
    if !dns.nameservers.is_empty() {
        return Ok(dns.nameservers.clone());
    }
    let (config, _) = crate::resolver_parts(dns).map_err(SecureError::Failed)?;
    let mut out: Vec<SocketAddr> = Vec::new();
    for ns in config.name_servers() {
        let port = ns.connections.first().map_or(53, |c| c.port);
        let addr = SocketAddr::new(ns.ip, port);
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    Ok(out)
}

/// RFC 7672 §2.1: asks for `name`/`rtype` with AD and DO set and reports whether the reply is
/// authenticated. Secure only when `[dns] dnssec = "trust-ad"`.
pub async fn query(dns: &Dns, name: &str, rtype: RecordType) -> Result<SecureAnswer, SecureError> {
    let fqdn = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    let qname = Name::from_ascii(&fqdn)
        .map_err(|e| SecureError::Failed(format!("bad DNS name {name:?}: {e}")))?;
    let mut msg = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.metadata.authentic_data = true;
    msg.add_query(Query::query(qname, rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(true);
    msg.set_edns(edns);
    let wire = msg
        .to_vec()
        .map_err(|e| SecureError::Failed(format!("cannot encode a DNS query: {e}")))?;
    let limit = Duration::from_secs(dns.timeout_secs.max(1));
    let mut last = SecureError::Failed("no name server configured".into());
    for server in servers(dns)? {
        for _ in 0..dns.attempts.max(1) {
            match ask(server, &wire, msg.metadata.id, limit).await {
                Ok(reply) => return interpret(dns, reply, rtype),
                Err(e) => last = SecureError::Failed(format!("{server}: {e}")),
            }
        }
    }
    Err(last)
}

fn interpret(dns: &Dns, reply: Message, rtype: RecordType) -> Result<SecureAnswer, SecureError> {
    let rcode = reply.metadata.response_code;
    let secure = dns.dnssec == Dnssec::TrustAd && reply.metadata.authentic_data;
    match rcode {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        other => {
            return Err(SecureError::Failed(format!(
                "the resolver answered {other}"
            )))
        }
    }
    let records: Vec<RData> = reply
        .answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .map(|r| r.data.clone())
        .collect();
    let ttl = reply
        .answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .map(|r| r.ttl)
        .min()
        .map_or(Duration::from_secs(300), |t| Duration::from_secs(t.into()));
    Ok(SecureAnswer {
        records,
        nxdomain: rcode == ResponseCode::NXDomain,
        secure,
        ttl,
    })
}

/// One query over UDP, again over TCP when the reply is truncated (RFC 7766).
async fn ask(server: SocketAddr, wire: &[u8], id: u16, limit: Duration) -> Result<Message, String> {
    let deadline = Instant::now() + limit;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| "address")?
    } else {
        "[::]:0".parse().map_err(|_| "address")?
    };
    let sock = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    sock.connect(server).await.map_err(|e| e.to_string())?;
    sock.send(wire).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65535];
    let reply = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, sock.recv(&mut buf))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        // Replies with another id are strays (or spoofing attempts): keep waiting.
        if let Ok(m) = Message::from_vec(&buf[..n]) {
            if m.metadata.id == id && m.metadata.message_type == MessageType::Response {
                break m;
            }
        }
    };
    if !reply.metadata.truncation {
        return Ok(reply);
    }
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(left, async {
        let mut tcp = TcpStream::connect(server)
            .await
            .map_err(|e| e.to_string())?;
        let len = u16::try_from(wire.len()).map_err(|_| "query too long")?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(wire);
        tcp.write_all(&framed).await.map_err(|e| e.to_string())?;
        let n = tcp.read_u16().await.map_err(|e| e.to_string())?;
        let mut body = vec![0u8; n.into()];
        tcp.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        let m = Message::from_vec(&body).map_err(|e| e.to_string())?;
        if m.metadata.id != id {
            return Err("TCP reply with a wrong id".to_string());
        }
        Ok(m)
    })
    .await
    .map_err(|_| "timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::A;
    use hickory_resolver::proto::rr::Record;

    fn reply(ad: bool, rcode: ResponseCode, answers: usize) -> Message {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.metadata.authentic_data = ad;
        m.metadata.response_code = rcode;
        for i in 0..answers {
            let name = Name::from_ascii("mx.example.").unwrap();
            m.answers.push(Record::from_rdata(
                name,
                60 + i as u32,
                RData::A(A::new(192, 0, 2, i as u8)),
            ));
        }
        m
    }

    fn dns(dnssec: Dnssec) -> Dns {
        Dns {
            dnssec,
            ..Dns::default()
        }
    }

    #[test]
    fn the_ad_bit_counts_only_when_trusted() {
        let a = interpret(
            &dns(Dnssec::TrustAd),
            reply(true, ResponseCode::NoError, 2),
            RecordType::A,
        )
        .unwrap();
        assert!(a.secure && !a.nxdomain);
        assert_eq!((a.records.len(), a.ttl), (2, Duration::from_secs(60)));
        let a = interpret(
            &dns(Dnssec::Off),
            reply(true, ResponseCode::NoError, 1),
            RecordType::A,
        )
        .unwrap();
        assert!(!a.secure);
        let a = interpret(
            &dns(Dnssec::TrustAd),
            reply(false, ResponseCode::NoError, 1),
            RecordType::A,
        )
        .unwrap();
        assert!(!a.secure);
        // Records of another type are not the answer.
        let a = interpret(
            &dns(Dnssec::TrustAd),
            reply(true, ResponseCode::NoError, 1),
            RecordType::TLSA,
        )
        .unwrap();
        assert!(a.records.is_empty() && a.secure);
        let a = interpret(
            &dns(Dnssec::TrustAd),
            reply(true, ResponseCode::NXDomain, 0),
            RecordType::A,
        )
        .unwrap();
        assert!(a.nxdomain && a.secure);
        // SERVFAIL is what a validating resolver says for bogus data.
        assert!(interpret(
            &dns(Dnssec::TrustAd),
            reply(false, ResponseCode::ServFail, 0),
            RecordType::A
        )
        .is_err());
    }
}
