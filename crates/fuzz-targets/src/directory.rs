//! The directory's address normalisation and the SASL mechanisms.

use std::sync::Arc;

use postern_directory::address::{
    address_literal_ip, domain_to_unicode, normalize_domain, normalize_local_part,
    normalize_remote_address, MAX_DOMAIN_LEN, MAX_LOCAL_PART_LEN,
};
use postern_directory::sasl::ScramCredentials;
use postern_directory::{
    Address, Authenticator, DirectoryError, SaslError, SaslMechanism, SaslSession, SaslStep,
};

/// Mail addresses as the directory reads them from SMTP envelopes, IMAP/POP3 logins, SASL
/// identities and the admin CLI ([`postern_directory::Address`], RFC 5321 §4.1.2 / §4.5.3.1,
/// RFC 6531, IDNA per RFC 5891).
///
/// The input, taken as UTF-8 (lossily), is parsed as a whole address, and its part before the
/// first `@` as a local part and after it as a domain. Checks: no panic; a normalised address is
/// a fixed point (its `Display` form parses to the same address, and so does its Unicode domain
/// form); normalised parts respect the RFC 5321 limits and hold no control character; an address
/// literal domain names the IP it canonicalises to.
pub fn address(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(a) = Address::parse(&text) {
        let local = a.local_part();
        let domain = a.domain();
        assert!(
            !local.is_empty() && local.len() <= MAX_LOCAL_PART_LEN,
            "{a:?}"
        );
        assert!(
            !domain.is_empty() && domain.len() <= MAX_DOMAIN_LEN,
            "{a:?}"
        );
        assert!(!local.chars().any(char::is_control), "{a:?}");
        assert!(domain.is_ascii(), "{a:?}");
        assert_eq!(Address::parse(&a.to_string()).as_ref(), Ok(&a));
        assert_eq!(Address::new(local, domain).as_ref(), Ok(&a));
        assert_eq!(Address::new(local, &a.domain_unicode()).as_ref(), Ok(&a));
        if domain.starts_with('[') {
            assert!(address_literal_ip(domain).is_some(), "{a:?}");
        }
        let _ = a.split_detail('+');
        let _ = normalize_remote_address(&text);
    }
    let (local, domain) = text.split_once('@').unwrap_or((&text, &text));
    if let Ok(l) = normalize_local_part(local) {
        assert_eq!(normalize_local_part(&l).as_ref(), Ok(&l));
    }
    if let Ok(d) = normalize_domain(domain) {
        assert_eq!(normalize_domain(&d).as_ref(), Ok(&d));
        let _ = domain_to_unicode(&d);
    }
    let _ = address_literal_ip(domain);
}

/// The one account the fake directory knows.
const ACCOUNT: &str = "alice@example.org";
const PASSWORD: &[u8] = b"secret";

/// An [`Authenticator`] with one account, `alice@example.org` / `secret`, and SCRAM keys for it;
/// the login `fail@example.org` makes the directory fail (a server-side error).
pub(crate) struct FakeAuthenticator;

impl Authenticator for FakeAuthenticator {
    fn verify_plain(
        &self,
        authcid: &str,
        password: &[u8],
    ) -> Result<Option<String>, DirectoryError> {
        if authcid == "fail@example.org" {
            return Err(DirectoryError::NoSuchAccount(
                "fake directory failure".into(),
            ));
        }
        let known = Address::parse(authcid)
            .map(|a| a.to_string() == ACCOUNT)
            .unwrap_or(false);
        Ok((known && password == PASSWORD).then(|| ACCOUNT.to_string()))
    }

    fn scram_credentials(
        &self,
        authcid: &str,
        _mechanism: &str,
    ) -> Result<Option<ScramCredentials>, DirectoryError> {
        // Fixed keys: enough for a SCRAM mechanism's parser to reach its proof check.
        let known = Address::parse(authcid)
            .map(|a| a.to_string() == ACCOUNT)
            .unwrap_or(false);
        Ok(known.then(|| ScramCredentials {
            account: ACCOUNT.to_string(),
            salt: b"postern-fuzz-salt".to_vec(),
            iterations: 4096,
            stored_key: vec![0x5a; 32],
            server_key: vec![0xa5; 32],
        }))
    }
}

/// The SCRAM server nonce the `sasl` target uses (seeds echo it: `r=<client nonce>fuzz`).
pub(crate) const FUZZ_NONCE: &str = "fuzz";

/// Longest exchange a mechanism may have: more challenges than this is a loop.
const MAX_ROUNDS: usize = 16;

/// Server-side SASL exchanges (RFC 4422) through [`SaslSession`] with a fake directory, for every
/// mechanism in [`SaslMechanism::ALL`] (today PLAIN, RFC 4616, and LOGIN; a SCRAM-SHA-256
/// mechanism, RFC 7677, is covered as soon as it is added to `ALL`: the fake directory already
/// has SCRAM keys, and seeds for it go in `fuzz/corpus/sasl/`).
///
/// Input: the first octet picks the mechanism (modulo the number of mechanisms) and, with bit
/// 0x80, that the first message is an initial response (RFC 4422 §4); the rest is the client's
/// messages separated by LF, already base64-decoded as the protocol layer hands them over.
/// Checks: no panic; an exchange ends within a few rounds; success only with the right password
/// for the one account, reported as that account, with an authzid only if it names the same
/// identity; once finished, further steps are refused; a wrong password is an authentication
/// failure that names the identity (for the throttle).
pub fn sasl(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mechanisms = SaslMechanism::ALL;
    let mechanism = mechanisms[usize::from(mode & 0x7f) % mechanisms.len()];
    let mut messages = rest.split(|&b| b == b'\n');
    // A fixed server nonce, so that the fuzzer can echo it and reach SCRAM's final message.
    let mut s =
        SaslSession::new(mechanism, Arc::new(FakeAuthenticator)).with_server_nonce(FUZZ_NONCE);
    assert_eq!(s.mechanism(), mechanism);
    let initial = if mode & 0x80 != 0 {
        Some(messages.next().unwrap_or_default())
    } else {
        None
    };
    let mut step = s.start(initial);
    let mut rounds = 0;
    loop {
        match step {
            Ok(SaslStep::Challenge(_)) => {
                assert!(!s.is_finished(), "a challenge after the end");
                rounds += 1;
                assert!(rounds <= MAX_ROUNDS, "{mechanism} challenges forever");
                let Some(m) = messages.next() else {
                    return;
                };
                step = s.step(m);
            }
            Ok(SaslStep::Done(c)) => {
                assert_eq!(c.account, ACCOUNT);
                if let Some(z) = &c.authzid {
                    assert_eq!(
                        Address::parse(z).map(|a| a.to_string()).as_deref(),
                        Ok(ACCOUNT),
                        "authorised as someone else: {z:?}"
                    );
                }
                break;
            }
            Err(e) => {
                if let SaslError::AuthenticationFailed { authcid } = &e {
                    assert_eq!(e.authcid(), Some(authcid.as_str()));
                    assert!(e.is_auth_failure());
                }
                break;
            }
        }
    }
    assert!(
        s.is_finished(),
        "the exchange ended but the session goes on"
    );
    assert!(matches!(s.step(b"more"), Err(SaslError::Finished)));
}

/// aliases(5) files (`postern newaliases`): never panics; every entry has a name without white
/// space, at least one target, and lines that exist in the input, in order; names are unique.
pub fn aliases_file(data: &[u8]) {
    use postern_directory::aliases_file::{parse, parse_include, Target};
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    let file = std::path::Path::new("/etc/aliases");
    match parse(&text, file) {
        Ok(entries) => {
            let mut names = std::collections::HashSet::new();
            let mut last = 0;
            for e in &entries {
                assert!(
                    !e.name.is_empty() && !e.name.contains(char::is_whitespace),
                    "{e:?}"
                );
                assert!(names.insert(e.name.clone()), "{e:?}");
                assert!(e.line > last && e.line <= lines, "{e:?}");
                last = e.line;
                assert!(!e.targets.is_empty(), "{e:?}");
                for (t, line) in &e.targets {
                    assert!(*line >= e.line && *line <= lines, "{e:?}");
                    match t {
                        Target::Address(a) => assert!(!a.is_empty(), "{e:?}"),
                        Target::Command(c) => assert!(!c.trim().is_empty(), "{e:?}"),
                        Target::File(p) | Target::Include(p) => assert!(p.is_absolute(), "{e:?}"),
                    }
                }
            }
        }
        Err(e) => assert!(e.line >= 1 && e.line <= lines.max(1), "{e}"),
    }
    if let Ok(targets) = parse_include(&text, file) {
        assert!(targets.iter().all(|(_, l)| *l >= 1 && *l <= lines));
    }
}
