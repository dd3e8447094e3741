//! Unit tests on mail-auth's caches filled in memory (no DNS server: the resolver points at a
//! closed port, so any lookup the test did not foresee is a visible temperror).

use super::*;
use crate::{generate, DkimKeys};
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::dmarc::Dmarc;
use mail_auth::ResolverCache;
use mail_auth::{RecordSet, Txt};
use postern_smtp::SessionFindings;
use std::sync::Mutex;
use std::time::Instant;

fn authenticator() -> Arc<Authenticator> {
    let dns = postern_config::Dns {
        nameservers: vec!["127.0.0.1:9".parse().unwrap()],
        timeout_secs: 1,
        attempts: 1,
        cache_size: 1000,
        dnssec: postern_config::Dnssec::Off,
        max_lookups_per_message: 50,
    };
    Arc::new(Authenticator::new(&dns).unwrap())
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

fn put_txt(a: &Authenticator, name: &str, txt: Txt) {
    a.caches.txt.insert(format!("{name}.").into(), txt, later());
}

/// Publishes nothing at `name` (so a lookup the test expects never reaches the network).
fn put_none(a: &Authenticator, name: &str) {
    put_txt(
        a,
        name,
        Txt::Error(mail_auth::Error::Dns(
            mail_auth::DnsError::InvalidRecordType,
        )),
    );
}

fn authenticator_with_tlds() -> Arc<Authenticator> {
    let a = authenticator();
    for tld in ["org", "net", "test", "example"] {
        put_none(&a, &format!("_dmarc.{tld}"));
    }
    a
}

fn put_dmarc(a: &Authenticator, domain: &str, record: &str) {
    let d = Dmarc::parse(record.as_bytes()).unwrap();
    put_txt(a, &format!("_dmarc.{domain}"), Txt::Dmarc(Arc::new(d)));
}

fn put_key(a: &Authenticator, name: &str, record: &str) {
    let k = DomainKey::parse(record.as_bytes()).unwrap();
    put_txt(a, name, Txt::DomainKey(Arc::new(k)));
}

fn ctx(peer: &str, helo: &str) -> Context {
    Context {
        peer: peer.parse().unwrap(),
        service: Service::Smtp,
        helo: Some(helo.into()),
        account: None,
        tls: false,
        sender: None,
        findings: Arc::new(Mutex::new(SessionFindings::default())),
    }
}

fn check(a: Arc<Authenticator>, policy: AuthPolicy) -> AuthCheck {
    AuthCheck::new(a, &policy, "mx.test", Vec::new(), None)
}

fn envelope() -> Envelope {
    Envelope {
        sender: Some("a@example.org".into()),
        recipients: vec![postern_spool::Recipient::new("bob@mx.test")],
        ret: None,
        envid: None,
        body: Default::default(),
        smtputf8: false,
        requiretls: false,
        authenticated: None,
        client_ip: None,
        helo: None,
    }
}

#[tokio::test]
async fn skipped_for_submission_authenticated_and_trusted() {
    let a = authenticator_with_tlds();
    let policy = AuthPolicy {
        spf_reject_fail: true,
        ..AuthPolicy::default()
    };
    let c = AuthCheck::new(
        a,
        &policy,
        "mx.test",
        vec![Network::parse("10.0.0.0/8").unwrap()],
        None,
    );
    let mut x = ctx("10.1.2.3", "h.test");
    assert_eq!(c.mail(&x, Some("a@fail.test")).await, Verdict::Accept);
    x.peer = "192.0.2.1".parse().unwrap();
    x.account = Some("user".into());
    assert_eq!(c.mail(&x, Some("a@fail.test")).await, Verdict::Accept);
    x.account = None;
    x.service = Service::Submission;
    assert_eq!(c.mail(&x, Some("a@fail.test")).await, Verdict::Accept);
    assert!(x.findings.lock().unwrap().transaction.results.is_empty());
}

/// A message signed by this crate's signer (Ed25519 and RSA-2048), its key published in the
/// cache.
fn signed(domain: &str) -> (Vec<u8>, Vec<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), domain, "sel").unwrap();
    let keys = DkimKeys::load(dir.path()).unwrap();
    let body = format!(
        "From: Alice <alice@{domain}>\r\nTo: bob@mx.test\r\nSubject: hello\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@{domain}>\r\n\r\nHello there.\r\n"
    );
    let mut message = keys.sign(domain, body.as_bytes()).unwrap();
    message.extend_from_slice(body.as_bytes());
    let records = keys
        .selectors(domain)
        .iter()
        .map(|s| (s.dns_name(), s.txt_record()))
        .collect();
    (message, records)
}

#[tokio::test]
async fn dkim_pass_and_dmarc_pass_in_the_header() {
    let a = authenticator_with_tlds();
    let (message, records) = signed("example.org");
    for (name, value) in &records {
        put_key(&a, name, value);
    }
    put_dmarc(&a, "example.org", "v=DMARC1; p=reject");
    let c = check(a, AuthPolicy::default());
    let x = ctx("192.0.2.1", "[192.0.2.1]");
    x.with_findings(|f| {
        f.transaction.notes.insert("spf".into(), "none".into());
        f.transaction
            .notes
            .insert("spf_domain".into(), "other.example".into());
    });
    assert_eq!(c.data(&x, &envelope(), &message).await, Verdict::Accept);
    let results = x.findings.lock().unwrap().transaction.results.clone();
    let dkim: Vec<_> = results.iter().filter(|r| r.starts_with("dkim=")).collect();
    assert_eq!(dkim.len(), records.len(), "{results:?}");
    assert!(dkim
        .iter()
        .all(|r| r.starts_with("dkim=pass header.d=example.org header.s=sel-")));
    assert!(results.contains(&"arc=none smtp.remote-ip=192.0.2.1".to_string()));
    assert!(
        results.contains(&"dmarc=pass (p=reject dis=none) header.from=example.org".to_string()),
        "{results:?}"
    );
    let mut m = b"Authentication-Results: MX.test; dkim=pass\r\nAuthentication-Results: other.example; spf=pass\r\n".to_vec();
    m.extend_from_slice(&message);
    c.edit(&x, &envelope(), &mut m).await;
    let text = String::from_utf8_lossy(&m);
    assert!(
        text.starts_with("Authentication-Results: mx.test;\r\n\tdkim=pass"),
        "{text}"
    );
    assert_eq!(text.matches("Authentication-Results: mx.test").count(), 1);
    assert!(text.contains("Authentication-Results: other.example; spf=pass"));
}

/// Runs the DATA stage of `c` on a message from `domain` whose SPF passed for another domain.
async fn run(c: &AuthCheck, domain: &str) -> (Verdict, SessionFindings) {
    let x = ctx("192.0.2.1", "[192.0.2.1]");
    x.with_findings(|f| {
        f.transaction.notes.insert("spf".into(), "pass".into());
        f.transaction
            .notes
            .insert("spf_domain".into(), "elsewhere.example".into());
    });
    let m = format!("From: a@{domain}\r\nSubject: x\r\n\r\nbody\r\n").into_bytes();
    let v = c.data(&x, &envelope(), &m).await;
    let f = x.findings.lock().unwrap().clone();
    (v, f)
}

#[tokio::test]
async fn dmarc_reject_quarantine_and_overrides() {
    let a = authenticator_with_tlds();
    put_dmarc(&a, "reject.test", "v=DMARC1; p=reject");
    put_dmarc(&a, "quar.test", "v=DMARC1; p=quarantine");
    put_dmarc(&a, "none.test", "v=DMARC1; p=none");
    let c = check(a.clone(), AuthPolicy::default());
    let (v, f) = run(&c, "reject.test").await;
    match v {
        Verdict::Reject(line) => assert!(line.starts_with("550 5.7.26 "), "{line}"),
        other => panic!("{other:?}"),
    }
    assert!(f
        .transaction
        .results
        .iter()
        .any(|r| r == "dmarc=fail (p=reject dis=reject) header.from=reject.test"));
    let (v, f) = run(&c, "quar.test").await;
    assert_eq!(v, Verdict::Accept);
    assert!(f.total() >= AuthPolicy::default().junk_score, "{f:?}");
    let (v, f) = run(&c, "none.test").await;
    assert_eq!(v, Verdict::Accept);
    assert!(f
        .transaction
        .results
        .iter()
        .any(|r| r == "dmarc=fail (p=none dis=none) header.from=none.test"));

    // A known forwarder is never refused for DMARC.
    let forwarders = check(
        a,
        AuthPolicy {
            dmarc_forwarders: vec![Network::parse("192.0.2.0/24").unwrap()],
            ..AuthPolicy::default()
        },
    );
    let (v, f) = run(&forwarders, "reject.test").await;
    assert_eq!(v, Verdict::Accept);
    assert!(f
        .transaction
        .results
        .iter()
        .any(|r| r == "dmarc=fail (p=reject dis=none override=forwarded) header.from=reject.test"));
}

#[tokio::test]
async fn small_rsa_keys_and_future_timestamps_do_not_pass() {
    // A 512-bit RSA key: RFC 8301 says it must not verify.
    let a = authenticator_with_tlds();
    let (message, records) = signed("example.net");
    for (name, value) in &records {
        put_key(&a, name, value);
    }
    let c = check(
        a,
        AuthPolicy {
            // Ask for more than the 2048 bits of the RSA key this crate generates.
            dkim_min_rsa_bits: 4096,
            ..AuthPolicy::default()
        },
    );
    let x = ctx("192.0.2.1", "[192.0.2.1]");
    c.data(&x, &envelope(), &message).await;
    let results = x.findings.lock().unwrap().transaction.results.clone();
    assert!(
        results
            .iter()
            .any(|r| r.starts_with("dkim=fail (RSA key of 2048 bits, below 4096")),
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| r.starts_with("dkim=pass")),
        "{results:?}"
    );
}

#[tokio::test]
async fn iprev_pass_and_fail_from_the_cache() {
    let a = authenticator_with_tlds();
    let ip: IpAddr = "192.0.2.5".parse().unwrap();
    a.caches.ptr.insert(
        ip,
        RecordSet {
            rrset: Arc::from(vec![Box::<str>::from("host.example.")]),
            dnssec_status: Default::default(),
        },
        later(),
    );
    a.caches.ipv4.insert(
        "host.example.".into(),
        RecordSet {
            rrset: Arc::from(vec!["192.0.2.5".parse::<std::net::Ipv4Addr>().unwrap()]),
            dnssec_status: Default::default(),
        },
        later(),
    );
    let c = check(a.clone(), AuthPolicy::default());
    let x = ctx("192.0.2.5", "h");
    assert_eq!(c.connect(&x).await, Verdict::Accept);
    let f = x.findings.lock().unwrap().clone();
    assert_eq!(
        f.connection.results,
        vec!["iprev=pass (host.example) policy.iprev=192.0.2.5"]
    );

    let ip: IpAddr = "192.0.2.6".parse().unwrap();
    a.caches.ptr.insert(
        ip,
        RecordSet {
            rrset: Arc::from(vec![Box::<str>::from("host.example.")]),
            dnssec_status: Default::default(),
        },
        later(),
    );
    let strict = check(
        a,
        AuthPolicy {
            iprev_reject: true,
            ..AuthPolicy::default()
        },
    );
    let x = ctx("192.0.2.6", "h");
    match strict.connect(&x).await {
        Verdict::Reject(line) => assert!(line.starts_with("550 5.7.25 "), "{line}"),
        other => panic!("{other:?}"),
    }
    assert!(x.findings.lock().unwrap().connection.results[0].starts_with("iprev=fail"));
}

#[tokio::test]
async fn verdict_marks_junk_refuses_and_strips_forged_fields() {
    let policy = AuthPolicy::default();
    let v = VerdictCheck::new(&policy, Vec::new());
    let x = ctx("192.0.2.1", "h");
    let add = |points: f64, reason: &str| {
        x.with_findings(|f| {
            f.transaction.scores.push(Score {
                check: "t".into(),
                points,
                reason: reason.into(),
            })
        })
    };
    add(3.0, "spf=fail");
    let mut m =
        b"X-Postern-Verdict: junk; score=99\r\nX-Postern-Score: -50\r\nSubject: s\r\n\r\nb\r\n"
            .to_vec();
    assert_eq!(v.data(&x, &envelope(), &m).await, Verdict::Accept);
    v.edit(&x, &envelope(), &mut m).await;
    assert_eq!(m, b"X-Postern-Score: 3.0\r\nSubject: s\r\n\r\nb\r\n");
    add(4.5, "dmarc=fail");
    let mut m = b"Subject: s\r\n\r\nb\r\n".to_vec();
    v.edit(&x, &envelope(), &mut m).await;
    assert!(
        m.starts_with(b"X-Postern-Score: 7.5\r\nX-Postern-Verdict: junk; score=7.5; reasons=dmarc=fail(+4.5), spf=fail(+3.0)\r\n"),
        "{}",
        String::from_utf8_lossy(&m)
    );
    add(10.0, "x");
    match v.data(&x, &envelope(), &m).await {
        Verdict::Reject(line) => assert!(
            line.starts_with("550 5.7.1 message refused as spam (score 17.5"),
            "{line}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pct_is_read_from_the_record() {
    assert_eq!(dmarc_pct("v=DMARC1; p=reject; pct=20"), 20);
    assert_eq!(dmarc_pct("v=DMARC1; p=reject"), 100);
    assert_eq!(dmarc_pct("v=DMARC1; pct=bad"), 100);
    assert_eq!(dmarc_pct("v=DMARC1; PCT = 0"), 0);
}
