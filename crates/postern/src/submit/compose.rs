//! A request and the identity the kernel vouches for become an envelope and a message: the one
//! function both the socket and the maildrop pickup use (and the client, to refuse early what
//! the server would refuse). Nothing the client says about who it is is trusted.

use super::request::Request;
use super::users::Identity;
use super::Refusal;
use super::{EX_DATAERR, EX_NOPERM, EX_USAGE};
use postern_config::Config;
use postern_spool::{BodyType, Envelope, Notify, QueueId, Recipient};

/// The domain of local users' own addresses: `[sendmail] domain`, else the host name.
pub(crate) fn local_domain(config: &Config) -> &str {
    config
        .sendmail
        .domain
        .as_deref()
        .unwrap_or(&config.hostname)
}

/// Whether `who` may choose any envelope sender (`[sendmail] trusted_users`, `trusted_groups`;
/// Postfix's `authorized_submit_users` idea applied to `-f`).
pub(crate) fn trusted(config: &Config, who: &Identity) -> bool {
    if config.sendmail.trusted_users.contains(&who.login) {
        return true;
    }
    config
        .sendmail
        .trusted_groups
        .iter()
        .any(|g| match crate::privileges::lookup_group(g) {
            Ok(Some(gid)) => who.groups.contains(&gid),
            Ok(None) => {
                tracing::warn!("sendmail.trusted_groups: there is no group {g:?}");
                false
            }
            Err(e) => {
                tracing::warn!("sendmail.trusted_groups: {e}");
                false
            }
        })
}

/// An address with `@domain` added when it has none (Postfix's `append_at_myorigin`), checked.
fn qualify(address: &str, domain: &str) -> Result<String, Refusal> {
    let a = address.trim();
    let a = a
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(a);
    let full = if a.contains('@') {
        a.to_string()
    } else {
        format!("{a}@{domain}")
    };
    let ok = match full.rsplit_once('@') {
        Some((local, dom)) => {
            !local.is_empty()
                && !dom.is_empty()
                && full.len() <= 512
                && !full.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';')
                })
                && !dom.contains('@')
                && !local.contains('@')
                && dom.split('.').all(|l| !l.is_empty())
        }
        None => false,
    };
    if ok {
        Ok(full)
    } else {
        Err(Refusal::new(
            EX_DATAERR,
            format!("{address:?} is not a valid address"),
        ))
    }
}

/// The addresses of an RFC 5322 §3.4 address list (`To:`, `Cc:`, `Bcc:` values): display names,
/// comments, quoted strings and groups are taken apart; only the addr-specs are returned.
pub(crate) fn address_list(value: &str) -> Vec<String> {
    // Split on commas (and group ends) outside quotes, comments and angle brackets.
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quote = false;
    let mut depth = 0usize;
    let mut angle = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quote || depth > 0 => {
                escaped = true;
                cur.push(c);
            }
            '"' if depth == 0 => {
                quote = !quote;
                cur.push(c);
            }
            '(' if !quote => {
                depth += 1;
            }
            ')' if !quote && depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            '<' if !quote => {
                angle = true;
                cur.push(c);
            }
            '>' if !quote => {
                angle = false;
                cur.push(c);
            }
            // A group's display name ends at ':' (RFC 5322 §3.4 group = display-name ":" ...).
            ':' if !quote && !angle => cur.clear(),
            ',' | ';' if !quote && !angle => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items
        .into_iter()
        .filter_map(|item| {
            let item = item.trim();
            let spec = match (item.rfind('<'), item.rfind('>')) {
                (Some(l), Some(r)) if l < r => item[l + 1..r].trim(),
                _ => item,
            };
            // An obsolete route (`<@a,@b:user@host>`) keeps only the mailbox.
            let spec = spec.rsplit_once(':').map_or(spec, |(_, m)| m).trim();
            (!spec.is_empty()).then(|| spec.to_string())
        })
        .collect()
}

/// One header field with its raw lines (continuations and line ends included).
struct RawField<'a> {
    name: &'a [u8],
    raw: &'a [u8],
}

/// The fields of a header section (CRLF lines), in order.
fn raw_fields(header: &[u8]) -> Vec<RawField<'_>> {
    let mut out: Vec<RawField<'_>> = Vec::new();
    let mut pos = 0;
    while pos < header.len() {
        let end = header[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |p| pos + p + 1);
        let line = &header[pos..end];
        if matches!(line[0], b' ' | b'\t') {
            if let Some(last) = out.last_mut() {
                // Extend the previous field's raw bytes to cover this continuation.
                let start = last.raw.as_ptr() as usize - header.as_ptr() as usize;
                last.raw = &header[start..end];
            } else {
                out.push(RawField {
                    name: b"",
                    raw: line,
                });
            }
        } else {
            let colon = line.iter().position(|&b| b == b':').unwrap_or(0);
            out.push(RawField {
                name: line[..colon].trim_ascii_end(),
                raw: line,
            });
        }
        pos = end;
    }
    out
}

/// Whether the message begins with a header field (`name:`, RFC 5322 §2.2): otherwise all of it
/// is body, and the header we add gets its own empty line after it.
fn starts_with_field(message: &[u8]) -> bool {
    let first = message.split(|&b| b == b'\n').next().unwrap_or(b"");
    match first.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => first[..colon]
            .trim_ascii_end()
            .iter()
            .all(|&b| (33..=126).contains(&b) && b != b':'),
        _ => false,
    }
}

/// A phrase for a From: display name: plain words as they are, other ASCII in quotes,
/// non-ASCII as an RFC 2047 encoded word.
fn display_name(name: &str) -> String {
    if !name.is_ascii() {
        use base64::Engine as _;
        return format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(name.as_bytes())
        );
    }
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c))
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// 128 random bits as hex (maildrop names, Message-IDs).
pub(crate) fn random_hex() -> String {
    let mut buf = [0u8; 16];
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: writes at most the remaining length into buf.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // getrandom cannot fail on Linux ≥ 3.17 with these arguments; fall back to time.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            buf = (t ^ u128::from(std::process::id()) << 64).to_le_bytes();
            break;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The envelope and the message to queue under `id`, received at `now` (Unix seconds), or the
/// refusal with its sysexits code.
pub(crate) fn prepare(
    config: &Config,
    who: &Identity,
    req: &Request,
    id: &QueueId,
    now: i64,
) -> Result<(Envelope, Vec<u8>), Refusal> {
    let domain = local_domain(config);
    let own = format!("{}@{domain}", who.login);

    // The envelope sender: the caller's own address unless a trusted caller chose another.
    let sender = match &req.from {
        None => Some(own.clone()),
        Some(f) if f.is_empty() => None,
        Some(f) => Some(qualify(f, domain)?),
    };
    let is_own = sender
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case(&own));
    if !is_own && !trusted(config, who) {
        return Err(Refusal::new(
            EX_NOPERM,
            format!(
                "user {} may not send as {} (only as {own}; sendmail.trusted_users and \
                 sendmail.trusted_groups may choose the sender)",
                who.login,
                sender
                    .as_deref()
                    .map_or("<>".to_string(), |s| format!("<{s}>"))
            ),
        ));
    }

    // RFC 5322 §2.1: CRLF line ends; a leading mbox "From " line is not part of the message.
    let mut raw: &[u8] = &req.message;
    if raw.starts_with(b"From ") {
        raw = raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&[][..], |p| &raw[p + 1..]);
    }
    let data = postern_mail::wire::into_crlf(raw.to_vec());
    let (header, body): (&[u8], &[u8]) = if starts_with_field(&data) {
        let start = postern_mail::header::body_start(&data);
        let section = &data[..start];
        // The empty line that ends the header section is written again after our fields.
        let header = section
            .strip_suffix(b"\r\n\r\n")
            .map_or(section, |h| &section[..h.len() + 2]);
        (header, &data[start..])
    } else {
        (&[][..], &data[..])
    };
    let fields = raw_fields(header);
    let has = |name: &str| {
        fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
    };

    // Recipients: the arguments, plus with -t those of the header (Postfix adds both). With
    // Resent- fields present, the Resent- ones are the recipients (RFC 5322 §3.6.6).
    let mut rcpts: Vec<Recipient> = Vec::new();
    let default_notify = req.notify.unwrap_or_default();
    let mut add = |address: &str, notify: Notify| -> Result<(), Refusal> {
        let a = qualify(address, domain)?;
        if !rcpts.iter().any(|r| r.address.eq_ignore_ascii_case(&a)) {
            let mut r = Recipient::new(a);
            r.notify = notify;
            rcpts.push(r);
        }
        Ok(())
    };
    for r in &req.recipients {
        add(&r.address, r.notify.unwrap_or(default_notify))?;
    }
    if req.extract {
        let resent = has("resent-to") || has("resent-cc") || has("resent-bcc");
        let names: &[&str] = if resent {
            &["resent-to", "resent-cc", "resent-bcc"]
        } else {
            &["to", "cc", "bcc"]
        };
        for f in postern_mail::header::fields(header) {
            if names.iter().any(|n| f.is(n)) {
                for a in address_list(&f.value()) {
                    add(&a, default_notify)?;
                }
            }
        }
    }
    if rcpts.is_empty() {
        return Err(Refusal::new(
            EX_USAGE,
            if req.extract {
                "no recipient addresses found in the message header (To, Cc, Bcc)".to_string()
            } else {
                "no recipients: give addresses as arguments, or -t to take them from the header"
                    .to_string()
            },
        ));
    }
    if rcpts.len() > config.smtp.max_recipients {
        return Err(Refusal::new(
            EX_DATAERR,
            format!(
                "{} recipients: at most {} per message (smtp.max_recipients)",
                rcpts.len(),
                config.smtp.max_recipients
            ),
        ));
    }

    // The message: our Received first (RFC 5321 §4.4), the caller's fields without Bcc
    // (RFC 5322 §3.6.3: blind copies are not shown), then what is missing.
    let date = postern_mail::date::rfc5322(now);
    let login: String = who
        .login
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '(' | ')' | ';'))
        .collect();
    let mut out = Vec::with_capacity(data.len() + 512);
    out.extend_from_slice(
        format!(
            "Received: (from {login}@localhost)\r\n\tby {} (postern) id {id};\r\n\t{date}\r\n",
            config.hostname
        )
        .as_bytes(),
    );
    let mut received = 1;
    for f in &fields {
        if f.name.eq_ignore_ascii_case(b"bcc") || f.name.eq_ignore_ascii_case(b"resent-bcc") {
            continue;
        }
        if f.name.eq_ignore_ascii_case(b"received") {
            received += 1;
        }
        out.extend_from_slice(f.raw);
        if !f.raw.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    if received > config.smtp.max_received_headers {
        return Err(Refusal::new(
            EX_DATAERR,
            format!("{received} Received fields: the message is in a mail loop"),
        ));
    }
    // RFC 5322 §3.6: Date and From are required; Message-ID should be there (RFC 6409 §8).
    if !has("date") {
        out.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
    }
    if !has("message-id") {
        out.extend_from_slice(
            format!(
                "Message-ID: <{now:x}.{}@{}>\r\n",
                &random_hex()[..16],
                config.hostname
            )
            .as_bytes(),
        );
    }
    if !has("from") {
        let address = sender.clone().unwrap_or_else(|| own.clone());
        let name = req.full_name.clone().or_else(|| who.gecos.clone());
        let value = match name.filter(|n| !n.trim().is_empty()) {
            Some(n) => format!("{} <{address}>", display_name(n.trim())),
            None => address,
        };
        out.extend_from_slice(format!("From: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    if out.len() as u64 > config.smtp.max_message_size {
        return Err(Refusal::new(
            EX_DATAERR,
            format!(
                "the message is {} octets; the limit is {} (smtp.max_message_size)",
                out.len(),
                config.smtp.max_message_size
            ),
        ));
    }

    let eight_bit = out.iter().any(|&b| b >= 0x80);
    let body_type = match req.body {
        Some(BodyType::SevenBit) if eight_bit => BodyType::EightBitMime,
        Some(b) => b,
        None if eight_bit => BodyType::EightBitMime,
        None => BodyType::SevenBit,
    };
    let smtputf8 =
        !sender.as_deref().unwrap_or("").is_ascii() || rcpts.iter().any(|r| !r.address.is_ascii());
    let envelope = Envelope {
        sender,
        recipients: rcpts,
        ret: req.ret,
        envid: req.envid.clone(),
        body: body_type,
        smtputf8,
        requiretls: false,
        authenticated: None,
        client_ip: None,
        helo: None,
    };
    Ok((envelope, out))
}

#[cfg(test)]
mod tests {
    use super::super::request::Rcpt;
    use super::*;
    use postern_config::Source;

    fn config(extra: &str) -> Config {
        Config::from_toml(
            &format!("hostname = \"host.example\"\n{extra}"),
            Source::Defaults,
        )
        .unwrap()
    }

    fn user(login: &str, uid: u32) -> Identity {
        Identity {
            uid,
            login: login.into(),
            gecos: Some("Ann Example".into()),
            groups: vec![uid],
        }
    }

    fn req(rcpts: &[&str], message: &str) -> Request {
        Request {
            recipients: rcpts
                .iter()
                .map(|a| Rcpt {
                    address: a.to_string(),
                    notify: None,
                })
                .collect(),
            message: message.as_bytes().to_vec(),
            ..Request::default()
        }
    }

    fn id() -> QueueId {
        QueueId::generate()
    }

    #[test]
    fn adds_the_missing_fields() {
        let c = config("");
        let i = id();
        let (env, msg) = prepare(
            &c,
            &user("ann", 1000),
            &req(&["bob"], "Subject: hi\nTo: bob\n\nline\n.x\n"),
            &i,
            0,
        )
        .unwrap();
        let text = String::from_utf8(msg).unwrap();
        assert_eq!(env.sender.as_deref(), Some("ann@host.example"));
        assert_eq!(env.recipients[0].address, "bob@host.example");
        assert_eq!(env.body, BodyType::SevenBit);
        assert!(text.starts_with(&format!(
            "Received: (from ann@localhost)\r\n\tby host.example (postern) id {i};\r\n\tThu, 01 Jan 1970 00:00:00 +0000\r\nSubject: hi\r\nTo: bob\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\nMessage-ID: <0."
        )), "{text}");
        assert!(
            text.ends_with(
                "@host.example>\r\nFrom: Ann Example <ann@host.example>\r\n\r\nline\r\n.x\r\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn body_only_and_domain() {
        let c = config("[sendmail]\ndomain = \"example.org\"\n");
        let mut r = req(&["bob@else.example"], "just a line, no header\n");
        r.full_name = Some("Zoë \"Z\"".into());
        let (env, msg) = prepare(&c, &user("ann", 1000), &r, &id(), 0).unwrap();
        let text = String::from_utf8(msg).unwrap();
        assert_eq!(env.sender.as_deref(), Some("ann@example.org"));
        assert!(text.contains("From: =?UTF-8?B?"), "{text}");
        assert!(
            text.ends_with("\r\n\r\njust a line, no header\r\n"),
            "{text}"
        );
        // The name went into an encoded word: the message stays 7-bit.
        assert_eq!(env.body, BodyType::SevenBit);
    }

    #[test]
    fn extract_and_bcc() {
        let c = config("");
        let mut r = req(
            &["extra@x.example"],
            "To: \"Bob, B.\" <bob@x.example>, carol@x.example (Carol)\nCc: team: dan@x.example, eve;\nBcc: hidden@x.example,\n\tmore@x.example\nSubject: s\n\nbody\n",
        );
        r.extract = true;
        let (env, msg) = prepare(&c, &user("ann", 1000), &r, &id(), 0).unwrap();
        let got: Vec<&str> = env.recipients.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(
            got,
            [
                "extra@x.example",
                "bob@x.example",
                "carol@x.example",
                "dan@x.example",
                "eve@host.example",
                "hidden@x.example",
                "more@x.example"
            ]
        );
        let text = String::from_utf8(msg).unwrap();
        assert!(!text.to_lowercase().contains("bcc"), "{text}");
        assert!(!text.contains("hidden"), "{text}");
        assert!(text.contains("Subject: s\r\n"), "{text}");

        // Resent- fields win.
        let mut r = req(&[], "To: old@x.example\nResent-To: new@x.example\n\nb\n");
        r.extract = true;
        let (env, _) = prepare(&c, &user("ann", 1000), &r, &id(), 0).unwrap();
        assert_eq!(env.recipients.len(), 1);
        assert_eq!(env.recipients[0].address, "new@x.example");

        let mut r = req(&[], "Subject: nobody\n\nb\n");
        r.extract = true;
        assert_eq!(
            prepare(&c, &user("ann", 1000), &r, &id(), 0)
                .unwrap_err()
                .code,
            EX_USAGE
        );
    }

    #[test]
    fn sender_policy() {
        let c = config("[sendmail]\ntrusted_groups = [\"root\"]\n");
        let mut r = req(&["bob"], "Subject: x\n\nb\n");
        r.from = Some("boss@host.example".into());
        let e = prepare(&c, &user("ann", 1000), &r, &id(), 0).unwrap_err();
        assert_eq!(e.code, EX_NOPERM);
        assert!(
            e.text.contains("may not send as <boss@host.example>"),
            "{}",
            e.text
        );
        r.from = Some(String::new());
        assert_eq!(
            prepare(&c, &user("ann", 1000), &r, &id(), 0)
                .unwrap_err()
                .code,
            EX_NOPERM
        );
        // Her own address, spelt unqualified, is fine.
        r.from = Some("ann".into());
        prepare(&c, &user("ann", 1000), &r, &id(), 0).unwrap();
        // root is trusted by default; a member of a trusted group too.
        r.from = Some(String::new());
        let (env, msg) = prepare(&c, &user("root", 0), &r, &id(), 0).unwrap();
        assert_eq!(env.sender, None);
        assert!(String::from_utf8(msg)
            .unwrap()
            .contains("From: Ann Example <root@host.example>"));
        let mut member = user("ann", 1000);
        member.groups.push(0);
        r.from = Some("boss@host.example".into());
        let (env, _) = prepare(&c, &member, &r, &id(), 0).unwrap();
        assert_eq!(env.sender.as_deref(), Some("boss@host.example"));
    }

    #[test]
    fn limits_and_bad_addresses() {
        let c = config("[smtp]\nmax_message_size = 1000\n");
        let big = format!("Subject: x\n\n{}\n", "a".repeat(2000));
        assert_eq!(
            prepare(&c, &user("ann", 1000), &req(&["bob"], &big), &id(), 0)
                .unwrap_err()
                .code,
            EX_DATAERR
        );
        for bad in ["a@", "@b", "a@b@c", "a@b..c"] {
            assert_eq!(
                prepare(
                    &c,
                    &user("ann", 1000),
                    &req(&[bad], "S: x\n\nb\n"),
                    &id(),
                    0
                )
                .unwrap_err()
                .code,
                EX_DATAERR,
                "{bad}"
            );
        }
        // A long line and 8-bit text pass through unchanged, the mbox From_ line does not.
        let long = format!(
            "From ann Thu Jan  1 00:00:00 1970\nSubject: x\n\n{}é\n",
            "b".repeat(990)
        );
        let c = config("");
        let (env, msg) = prepare(&c, &user("ann", 1000), &req(&["bob"], &long), &id(), 0).unwrap();
        let text = String::from_utf8(msg).unwrap();
        assert!(!text.contains("From ann"));
        assert!(text.contains(&format!("{}é\r\n", "b".repeat(990))));
        assert_eq!(env.body, BodyType::EightBitMime);
    }

    #[test]
    fn address_lists() {
        assert_eq!(
            address_list("A <a@x>, \"B, b\" <b@x>, c@x (C, c), undisclosed-recipients:;"),
            ["a@x", "b@x", "c@x"]
        );
        assert_eq!(address_list("<@r1,@r2:d@x>"), ["d@x"]);
        assert!(address_list("").is_empty());
    }
}
