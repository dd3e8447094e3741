//! SPF `check_host()` (RFC 7208), written here rather than taken from mail-auth: checked
//! against pyspf, mail-auth 0.13 ignored the void-lookup limit (§4.6.4), accepted records
//! with syntax errors and unknown mechanisms (§4.6, permerror), took one of several SPF
//! records (§4.5, permerror), and answered temperror for macro-expanded names that are not
//! valid DNS names. Lookups go through the shared `[dns]` resolver (and its TTL cache).

use mail_auth::hickory_resolver::proto::rr::{Name, RData};
use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::SpfResult;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;

/// Why an evaluation stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// §2.6.6 temperror: a DNS error other than "no such name / no records".
    Temp,
    /// §2.6.7 permerror: a broken record, or a limit exceeded.
    Perm,
}

type Eval<T> = Result<T, Stop>;

/// One `check_host()` evaluation (with its lookup counters, §4.6.4).
pub(crate) struct Spf<'a> {
    resolver: &'a TokioResolver,
    ip: IpAddr,
    /// `<sender>` (`local@domain`; `postmaster@domain` when there is no local part).
    sender: String,
    helo: String,
    receiver: String,
    lookups: u32,
    voids: u32,
    /// The message's DNS budget (`[dns] max_lookups_per_message`), when it has one.
    budget: Option<&'a super::budget::Budget>,
}

/// §4.6.4: at most 10 DNS-querying terms, 2 void lookups.
const MAX_LOOKUPS: u32 = 10;
const MAX_VOIDS: u32 = 2;

impl<'a> Spf<'a> {
    /// An evaluation for client `ip` (IPv4-mapped IPv6 is IPv4, §5), `sender` (may be empty:
    /// then `postmaster@<domain>`), HELO name `helo`, our host name `receiver`.
    pub(crate) fn new(
        resolver: &'a TokioResolver,
        ip: IpAddr,
        sender: &str,
        helo: &str,
        receiver: &str,
    ) -> Spf<'a> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        Spf {
            resolver,
            ip,
            sender: sender.to_string(),
            helo: helo.to_string(),
            receiver: receiver.to_string(),
            lookups: 0,
            voids: 0,
            budget: None,
        }
    }

    /// Draws every query on `budget`: past it, the evaluation stops with temperror.
    pub(crate) fn with_budget(mut self, budget: &'a super::budget::Budget) -> Spf<'a> {
        self.budget = Some(budget);
        self
    }

    /// One query of the message's budget; refused, a temperror (§2.6.6: a transient error
    /// while performing the check).
    fn spend(&self) -> Eval<()> {
        match self.budget {
            Some(b) if !b.take() => Err(Stop::Temp),
            _ => Ok(()),
        }
    }

    /// §4: the result for `domain`.
    pub(crate) async fn check_host(&mut self, domain: &str) -> SpfResult {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if self.sender.is_empty() || !self.sender.contains('@') {
            let local = if self.sender.is_empty() {
                "postmaster"
            } else {
                self.sender.as_str()
            };
            self.sender = format!("{local}@{domain}");
        } else if self.sender.starts_with('@') {
            self.sender = format!("postmaster{}", self.sender);
        }
        match self.evaluate(domain).await {
            Ok(r) => r,
            Err(Stop::Temp) => SpfResult::TempError,
            Err(Stop::Perm) => SpfResult::PermError,
        }
    }

    fn evaluate(
        &mut self,
        domain: String,
    ) -> Pin<Box<dyn Future<Output = Eval<SpfResult>> + Send + '_>> {
        Box::pin(async move {
            // §4.3: a malformed domain has no policy.
            if !valid_domain(&domain) {
                return Ok(SpfResult::None);
            }
            let Some(record) = self.record(&domain).await? else {
                return Ok(SpfResult::None);
            };
            let terms = parse(&record)?;
            let mut redirect = None;
            for term in &terms {
                match term {
                    Term::Redirect(spec) => redirect = Some(spec.clone()),
                    Term::Directive(q, m) => {
                        if self.matches(m, &domain).await? {
                            return Ok(*q);
                        }
                    }
                    Term::Exp | Term::Unknown => {}
                }
            }
            // §6.1: redirect, only when no mechanism matched.
            if let Some(spec) = redirect {
                self.count()?;
                let target = self.expand(&spec, &domain)?;
                return match self.evaluate(target).await? {
                    SpfResult::None => Err(Stop::Perm),
                    r => Ok(r),
                };
            }
            Ok(SpfResult::Neutral)
        })
    }

    /// §4.6.4: one more DNS-querying term.
    fn count(&mut self) -> Eval<()> {
        self.lookups += 1;
        if self.lookups > MAX_LOOKUPS {
            return Err(Stop::Perm);
        }
        Ok(())
    }

    /// §4.6.4: a lookup that found nothing.
    fn void(&mut self, empty: bool) -> Eval<()> {
        if empty {
            self.voids += 1;
            if self.voids > MAX_VOIDS {
                return Err(Stop::Perm);
            }
        }
        Ok(())
    }

    /// §4.5: the one `v=spf1` record of `domain`; several are a permerror.
    async fn record(&self, domain: &str) -> Eval<Option<String>> {
        let Some(name) = fqdn(domain) else {
            return Ok(None);
        };
        self.spend()?;
        let lookup = match self.resolver.txt_lookup(name).await {
            Ok(l) => l,
            Err(e) => return not_found(e).map(|_| None),
        };
        let mut found = Vec::new();
        for r in lookup.answers() {
            if let RData::TXT(txt) = &r.data {
                let mut text = Vec::new();
                for part in txt.txt_data.iter() {
                    text.extend_from_slice(part);
                }
                let text = String::from_utf8_lossy(&text).into_owned();
                let lower = text.to_ascii_lowercase();
                if lower == "v=spf1" || lower.starts_with("v=spf1 ") {
                    found.push(text);
                }
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err(Stop::Perm),
        }
    }

    async fn addresses(&self, name: &str) -> Eval<Vec<IpAddr>> {
        let Some(n) = fqdn(name) else {
            return Ok(Vec::new());
        };
        self.spend()?;
        let lookup = match self.ip {
            IpAddr::V4(_) => self.resolver.ipv4_lookup(n).await,
            IpAddr::V6(_) => self.resolver.ipv6_lookup(n).await,
        };
        match lookup {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect()),
            Err(e) => not_found(e).map(|_| Vec::new()),
        }
    }

    /// §5: whether mechanism `m` matches, evaluated for `domain`.
    async fn matches(&mut self, m: &Mechanism, domain: &str) -> Eval<bool> {
        match m {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(net, len) => Ok(match self.ip {
                IpAddr::V4(ip) => in_v4(ip, *net, *len),
                IpAddr::V6(_) => false,
            }),
            Mechanism::Ip6(net, len) => Ok(match self.ip {
                IpAddr::V6(ip) => in_v6(ip, *net, *len),
                IpAddr::V4(_) => false,
            }),
            Mechanism::Include(spec) => {
                self.count()?;
                let target = self.expand(spec, domain)?;
                // §5.2: the included result decides only on pass; none is a permerror.
                match self.evaluate(target).await? {
                    SpfResult::Pass => Ok(true),
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
                    SpfResult::TempError => Err(Stop::Temp),
                    SpfResult::PermError | SpfResult::None => Err(Stop::Perm),
                }
            }
            Mechanism::A(spec, v4, v6) => {
                self.count()?;
                let target = self.target(spec.as_deref(), domain)?;
                let addrs = self.addresses(&target).await?;
                self.void(addrs.is_empty())?;
                Ok(addrs.iter().any(|a| self.cidr_match(*a, *v4, *v6)))
            }
            Mechanism::Mx(spec, v4, v6) => {
                self.count()?;
                let target = self.target(spec.as_deref(), domain)?;
                let Some(n) = fqdn(&target) else {
                    return self.void(true).map(|_| false);
                };
                self.spend()?;
                let exchanges: Vec<String> = match self.resolver.mx_lookup(n).await {
                    Ok(l) => l
                        .answers()
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::MX(mx) => Some(mx.exchange.to_ascii()),
                            _ => None,
                        })
                        .collect(),
                    Err(e) => {
                        not_found(e)?;
                        Vec::new()
                    }
                };
                self.void(exchanges.is_empty())?;
                // §4.6.4: more than 10 MX names is a permerror.
                if exchanges.len() > 10 {
                    return Err(Stop::Perm);
                }
                for x in exchanges {
                    let addrs = self.addresses(&x).await?;
                    if addrs.iter().any(|a| self.cidr_match(*a, *v4, *v6)) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                self.count()?;
                let target = self.target(spec.as_deref(), domain)?;
                let names = self.validated_names().await?;
                self.void(names.is_empty())?;
                Ok(names
                    .iter()
                    .any(|n| n == &target || n.ends_with(&format!(".{target}"))))
            }
            Mechanism::Exists(spec) => {
                self.count()?;
                let target = self.expand(spec, domain)?;
                // §5.7: always an A lookup, whatever the client's family.
                let Some(n) = fqdn(&target) else {
                    return self.void(true).map(|_| false);
                };
                self.spend()?;
                let found = match self.resolver.ipv4_lookup(n).await {
                    Ok(l) => l.answers().iter().any(|r| matches!(r.data, RData::A(_))),
                    Err(e) => {
                        not_found(e)?;
                        false
                    }
                };
                self.void(!found)?;
                Ok(found)
            }
        }
    }

    fn cidr_match(&self, addr: IpAddr, v4: u8, v6: u8) -> bool {
        match (self.ip, addr) {
            (IpAddr::V4(ip), IpAddr::V4(net)) => in_v4(ip, net, v4),
            (IpAddr::V6(ip), IpAddr::V6(net)) => in_v6(ip, net, v6),
            _ => false,
        }
    }

    /// §5.5: the PTR names of the client that resolve back to it (at most 10 tried).
    async fn validated_names(&self) -> Eval<Vec<String>> {
        self.spend()?;
        let names: Vec<String> = match self.resolver.reverse_lookup(self.ip).await {
            Ok(l) => l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::PTR(p) => {
                        Some(p.0.to_ascii().trim_end_matches('.').to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect(),
            Err(e) => {
                not_found(e)?;
                Vec::new()
            }
        };
        let mut out = Vec::new();
        for n in names.into_iter().take(10) {
            // A DNS error on one name only skips it (§5.5).
            if let Ok(addrs) = self.addresses(&n).await {
                if addrs.contains(&self.ip) {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }

    fn target(&self, spec: Option<&str>, domain: &str) -> Eval<String> {
        match spec {
            Some(s) => self.expand(s, domain),
            None => Ok(domain.to_string()),
        }
    }

    /// §7: macro expansion of a domain-spec, then §7.3's truncation to 253 octets.
    fn expand(&self, spec: &str, domain: &str) -> Eval<String> {
        let mut out = String::new();
        let mut chars = spec.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('_') => out.push(' '),
                Some('-') => out.push_str("%20"),
                Some('{') => {
                    let mut body = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => body.push(c),
                            None => return Err(Stop::Perm),
                        }
                    }
                    out.push_str(&self.macro_value(&body, domain)?);
                }
                _ => return Err(Stop::Perm),
            }
        }
        let mut out = out.trim_end_matches('.').to_string();
        while out.len() > 253 {
            match out.split_once('.') {
                Some((_, rest)) => out = rest.to_string(),
                None => break,
            }
        }
        Ok(out)
    }

    /// One `%{...}`: letter, optional digits, optional `r`, optional delimiters.
    fn macro_value(&self, body: &str, domain: &str) -> Eval<String> {
        let mut chars = body.chars();
        let letter = chars.next().ok_or(Stop::Perm)?;
        let rest: String = chars.collect();
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let mut rest = &rest[digits.len()..];
        let reverse = rest.starts_with(['r', 'R']);
        if reverse {
            rest = &rest[1..];
        }
        if !rest.chars().all(|c| ".-+,/_=".contains(c)) {
            return Err(Stop::Perm);
        }
        let delimiters: Vec<char> = if rest.is_empty() {
            vec!['.']
        } else {
            rest.chars().collect()
        };
        let (local, sender_domain) = self
            .sender
            .rsplit_once('@')
            .map_or(("postmaster", self.sender.as_str()), |(l, d)| (l, d));
        let value = match letter.to_ascii_lowercase() {
            's' => self.sender.clone(),
            'l' => local.to_string(),
            'o' => sender_domain.to_string(),
            'd' => domain.to_string(),
            'i' => match self.ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => nibbles(v6),
            },
            // The validated name needs lookups; RFC 7208 §5.5 discourages it: "unknown".
            'p' => "unknown".to_string(),
            'v' => match self.ip {
                IpAddr::V4(_) => "in-addr".into(),
                IpAddr::V6(_) => "ip6".into(),
            },
            'h' => self.helo.clone(),
            // c, r, t are for explanations only (§7.2).
            _ => return Err(Stop::Perm),
        };
        let _ = &self.receiver;
        let mut parts: Vec<&str> = value.split(|c| delimiters.contains(&c)).collect();
        if reverse {
            parts.reverse();
        }
        if !digits.is_empty() {
            let n: usize = digits.parse().map_err(|_| Stop::Perm)?;
            if n == 0 {
                return Err(Stop::Perm);
            }
            if parts.len() > n {
                parts = parts.split_off(parts.len() - n);
            }
        }
        let joined = parts.join(".");
        // §7.3: an upper-case macro letter URL-escapes the value.
        if letter.is_ascii_uppercase() {
            Ok(joined
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect())
        } else {
            Ok(joined)
        }
    }
}

/// A DNS error: "no such name / no records" is an empty answer, anything else temperror.
fn not_found(e: mail_auth::hickory_resolver::net::NetError) -> Eval<()> {
    match mail_auth::Error::from(e) {
        mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(_)) => Ok(()),
        _ => Err(Stop::Temp),
    }
}

/// The absolute DNS name of `domain`, `None` if it is not one.
fn fqdn(domain: &str) -> Option<Name> {
    if !valid_domain(domain) {
        return None;
    }
    Name::from_ascii(format!("{}.", domain.trim_end_matches('.'))).ok()
}

/// §4.3: at least two labels, none empty or longer than 63, at most 253 octets, ASCII
/// without spaces.
fn valid_domain(domain: &str) -> bool {
    let d = domain.trim_end_matches('.');
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_graphic()))
}

fn nibbles(v6: Ipv6Addr) -> String {
    let mut out = Vec::new();
    for b in v6.octets() {
        out.push(format!("{:x}", b >> 4));
        out.push(format!("{:x}", b & 0xf));
    }
    out.join(".")
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// A mechanism (§5).
#[derive(Debug, Clone, PartialEq)]
enum Mechanism {
    All,
    Include(String),
    A(Option<String>, u8, u8),
    Mx(Option<String>, u8, u8),
    Ptr(Option<String>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Directive(SpfResult, Mechanism),
    Redirect(String),
    Exp,
    Unknown,
}

/// §4.6, §12: the terms of a record; any syntax error is a permerror.
fn parse(record: &str) -> Eval<Vec<Term>> {
    let mut terms = Vec::new();
    let mut redirects = 0;
    let mut exps = 0;
    for word in record.split(' ').skip(1).filter(|w| !w.is_empty()) {
        // A modifier: name "=" macro-string (§4.6.1).
        if let Some((name, value)) = word.split_once('=') {
            let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if valid_name && !name.contains(':') {
                check_macro_string(value)?;
                match name.to_ascii_lowercase().as_str() {
                    "redirect" => {
                        redirects += 1;
                        terms.push(Term::Redirect(value.to_string()));
                    }
                    "exp" => {
                        exps += 1;
                        terms.push(Term::Exp);
                    }
                    _ => terms.push(Term::Unknown),
                }
                continue;
            }
        }
        let (qualifier, rest) = match word.chars().next() {
            Some('+') => (SpfResult::Pass, &word[1..]),
            Some('-') => (SpfResult::Fail, &word[1..]),
            Some('~') => (SpfResult::SoftFail, &word[1..]),
            Some('?') => (SpfResult::Neutral, &word[1..]),
            _ => (SpfResult::Pass, word),
        };
        let (name, arg) = match rest.find([':', '/']) {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let mechanism = match (name.to_ascii_lowercase().as_str(), arg) {
            ("all", None) => Mechanism::All,
            ("include", Some(a)) => Mechanism::Include(domain_spec(a)?),
            ("exists", Some(a)) => Mechanism::Exists(domain_spec(a)?),
            ("a", a) => {
                let (spec, v4, v6) = spec_and_cidr(a)?;
                Mechanism::A(spec, v4, v6)
            }
            ("mx", a) => {
                let (spec, v4, v6) = spec_and_cidr(a)?;
                Mechanism::Mx(spec, v4, v6)
            }
            ("ptr", None) => Mechanism::Ptr(None),
            ("ptr", Some(a)) => Mechanism::Ptr(Some(domain_spec(a)?)),
            ("ip4", Some(a)) => {
                let a = a.strip_prefix(':').ok_or(Stop::Perm)?;
                let (ip, len) = match a.split_once('/') {
                    Some((ip, len)) => (ip, cidr(len, 32)?),
                    None => (a, 32),
                };
                Mechanism::Ip4(ip.parse().map_err(|_| Stop::Perm)?, len)
            }
            ("ip6", Some(a)) => {
                let a = a.strip_prefix(':').ok_or(Stop::Perm)?;
                let (ip, len) = match a.rsplit_once('/') {
                    Some((ip, len)) => (ip, cidr(len, 128)?),
                    None => (a, 128),
                };
                Mechanism::Ip6(ip.parse().map_err(|_| Stop::Perm)?, len)
            }
            _ => return Err(Stop::Perm),
        };
        terms.push(Term::Directive(qualifier, mechanism));
    }
    if redirects > 1 || exps > 1 {
        return Err(Stop::Perm);
    }
    Ok(terms)
}

fn cidr(text: &str, max: u8) -> Eval<u8> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(Stop::Perm);
    }
    let n: u8 = text.parse().map_err(|_| Stop::Perm)?;
    if n > max {
        return Err(Stop::Perm);
    }
    Ok(n)
}

/// `:domain-spec` (the colon included in `arg`).
fn domain_spec(arg: &str) -> Eval<String> {
    let spec = arg.strip_prefix(':').ok_or(Stop::Perm)?;
    if spec.is_empty() {
        return Err(Stop::Perm);
    }
    check_macro_string(spec)?;
    Ok(spec.to_string())
}

/// `[:domain-spec][/v4cidr][//v6cidr]` of `a` and `mx`.
fn spec_and_cidr(arg: Option<&str>) -> Eval<(Option<String>, u8, u8)> {
    let Some(arg) = arg else {
        return Ok((None, 32, 128));
    };
    let (spec, cidrs) = match arg.strip_prefix(':') {
        Some(rest) => match rest.find('/') {
            Some(i) => (Some(&rest[..i]), &rest[i..]),
            None => (Some(rest), ""),
        },
        None => (None, arg),
    };
    let spec = match spec {
        Some(s) => Some(domain_spec(&format!(":{s}"))?),
        None => None,
    };
    let (v4, v6) = if cidrs.is_empty() {
        (32, 128)
    } else if let Some(v6) = cidrs.strip_prefix("//") {
        (32, cidr(v6, 128)?)
    } else {
        let c = cidrs.strip_prefix('/').ok_or(Stop::Perm)?;
        match c.split_once("//") {
            Some((v4, v6)) => (cidr(v4, 32)?, cidr(v6, 128)?),
            None => (cidr(c, 32)?, 128),
        }
    };
    Ok((spec, v4, v6))
}

/// §7.1 syntax of a macro-string (expansion happens later).
fn check_macro_string(text: &str) -> Eval<()> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('%' | '_' | '-') => {}
                Some('{') => {
                    let body: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    let mut b = body.chars();
                    match b.next() {
                        Some(l) if "slodiphcrtvSLODIPHCRTV".contains(l) => {}
                        _ => return Err(Stop::Perm),
                    }
                    let rest: String = b.collect();
                    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
                    let rest = rest.strip_prefix(['r', 'R']).unwrap_or(rest);
                    if !rest.chars().all(|c| ".-+,/_=".contains(c)) {
                        return Err(Stop::Perm);
                    }
                }
                _ => return Err(Stop::Perm),
            }
        } else if !(' '..='~').contains(&c) {
            return Err(Stop::Perm);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_or_refuses_records() {
        assert!(parse("v=spf1 ip4:192.0.2.0/24 a mx/24 -all").is_ok());
        assert_eq!(parse("v=spf1 ip4:999.0.0.1 -all"), Err(Stop::Perm));
        assert_eq!(parse("v=spf1 foo:bar -all"), Err(Stop::Perm));
        assert_eq!(
            parse("v=spf1 redirect=a.example redirect=b.example"),
            Err(Stop::Perm)
        );
        assert_eq!(parse("v=spf1 ip4:192.0.2.1/33"), Err(Stop::Perm));
        assert_eq!(parse("v=spf1 include:%{x}.example"), Err(Stop::Perm));
        assert!(parse("v=spf1 unknown-mod=x ~all").is_ok());
        assert_eq!(
            parse("v=spf1 a:example.org/24//64").unwrap(),
            vec![Term::Directive(
                SpfResult::Pass,
                Mechanism::A(Some("example.org".into()), 24, 64)
            )]
        );
    }

    #[test]
    fn expands_macros() {
        let dns = postern_config::Dns {
            nameservers: vec!["127.0.0.1:9".parse().unwrap()],
            timeout_secs: 1,
            attempts: 1,
            cache_size: 16,
            dnssec: postern_config::Dnssec::Off,
            max_lookups_per_message: 50,
        };
        let (config, opts) = postern_dns::resolver_parts(&dns).unwrap();
        let auth = mail_auth::MessageAuthenticator::new(config, opts).unwrap();
        let s = Spf::new(
            &auth.0,
            "192.0.2.3".parse().unwrap(),
            "strong-bad@email.example.com",
            "mx.example.org",
            "mx.test",
        );
        let d = "email.example.com";
        // RFC 7208 §7.4's examples.
        assert_eq!(s.expand("%{s}", d).unwrap(), "strong-bad@email.example.com");
        assert_eq!(s.expand("%{o}", d).unwrap(), "email.example.com");
        assert_eq!(s.expand("%{d4}", d).unwrap(), "email.example.com");
        assert_eq!(s.expand("%{d3}", d).unwrap(), "email.example.com");
        assert_eq!(s.expand("%{d2}", d).unwrap(), "example.com");
        assert_eq!(s.expand("%{d1}", d).unwrap(), "com");
        assert_eq!(s.expand("%{dr}", d).unwrap(), "com.example.email");
        assert_eq!(s.expand("%{d2r}", d).unwrap(), "example.email");
        assert_eq!(s.expand("%{l}", d).unwrap(), "strong-bad");
        assert_eq!(s.expand("%{l-}", d).unwrap(), "strong.bad");
        assert_eq!(s.expand("%{lr}", d).unwrap(), "strong-bad");
        assert_eq!(s.expand("%{lr-}", d).unwrap(), "bad.strong");
        assert_eq!(s.expand("%{l1r-}", d).unwrap(), "strong");
        assert_eq!(
            s.expand("%{ir}.%{v}._spf.%{d2}", d).unwrap(),
            "3.2.0.192.in-addr._spf.example.com"
        );
        assert_eq!(
            s.expand("%{lr-}.lp._spf.%{d2}", d).unwrap(),
            "bad.strong.lp._spf.example.com"
        );
        assert_eq!(s.expand("%{h}", d).unwrap(), "mx.example.org");
        assert!(s.expand("%{z}", d).is_err());
        let s6 = Spf::new(
            &auth.0,
            "2001:db8::cb01".parse().unwrap(),
            "a@example.com",
            "h",
            "mx.test",
        );
        assert_eq!(
            s6.expand("%{ir}.%{v}._spf.%{d2}", "email.example.com")
                .unwrap(),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
    }
}
