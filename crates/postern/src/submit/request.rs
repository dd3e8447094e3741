//! The submission request, the same bytes on `submit.sock` and in a maildrop file: a few
//! header lines, `end`, then the message exactly as the client read it (line ends untouched;
//! the server turns them into CRLF). Private to this module tree: the client and the server
//! are the same binary, so the format only has to agree with itself.
//!
//! ```text
//! postern-submit 1
//! from alice@example.org        (absent: the caller's own address; "from <>": null sender)
//! fullname Alice Example        (-F)
//! rcpt bob@example.org          (repeated; "rcpt ADDR notify=never" from -bs)
//! extract                       (-t)
//! notify success,failure        (-N, for every recipient without its own)
//! ret hdrs                      (-R)
//! envid ABC                     (-V)
//! body 8bitmime                 (-B)
//! end
//! <message>
//! ```

use postern_spool::{BodyType, Notify, Ret};

/// The first line of every request.
pub(crate) const MAGIC: &str = "postern-submit 1";
/// Longest header part (before the message): recipients are limited elsewhere, this only
/// bounds what the server reads before it knows what it is reading.
pub(crate) const MAX_HEAD: usize = 1 << 20;

/// One envelope recipient as the client gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rcpt {
    pub address: String,
    /// Its own DSN NOTIFY (from `-bs` RCPT), else the request's.
    pub notify: Option<Notify>,
}

/// What the client asks for (the caller's identity is not in it: the kernel tells the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Request {
    /// `-f`/`-r`: `Some("")` is the null sender `<>`; `None` is the caller's own address.
    pub from: Option<String>,
    /// `-F`: the full name for a From: the server adds.
    pub full_name: Option<String>,
    pub recipients: Vec<Rcpt>,
    /// `-t`: recipients from the header too.
    pub extract: bool,
    /// `-N`.
    pub notify: Option<Notify>,
    /// `-R`.
    pub ret: Option<Ret>,
    /// `-V`.
    pub envid: Option<String>,
    /// `-B`.
    pub body: Option<BodyType>,
    /// The message as read (after `.` handling).
    pub message: Vec<u8>,
}

/// A request that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed submission request: {}", self.0)
    }
}

/// A value may be written on a header line: no line ends, no NUL.
pub(crate) fn value_ok(v: &str) -> bool {
    !v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// RFC 3461 §4.1 NOTIFY as `-N` writes it: `never`, or a comma list of `success`, `delay`,
/// `failure` (case-insensitive).
pub(crate) fn parse_notify(v: &str) -> Option<Notify> {
    if v.eq_ignore_ascii_case("never") {
        return Some(Notify::NEVER);
    }
    let mut n = Notify::NEVER;
    for word in v.split(',') {
        match word.trim().to_ascii_lowercase().as_str() {
            "success" => n.success = true,
            "delay" => n.delay = true,
            "failure" => n.failure = true,
            _ => return None,
        }
    }
    Some(n)
}

/// The `-N` spelling of a NOTIFY value.
pub(crate) fn notify_text(n: &Notify) -> String {
    let words: Vec<&str> = [
        (n.success, "success"),
        (n.delay, "delay"),
        (n.failure, "failure"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, w)| *w)
    .collect();
    if words.is_empty() {
        "never".to_string()
    } else {
        words.join(",")
    }
}

impl Request {
    /// The request's bytes. Every value was checked with [`value_ok`] by the option parser.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut head = format!("{MAGIC}\n");
        if let Some(f) = &self.from {
            head.push_str(&format!(
                "from {}\n",
                if f.is_empty() { "<>" } else { f.as_str() }
            ));
        }
        if let Some(n) = &self.full_name {
            head.push_str(&format!("fullname {n}\n"));
        }
        for r in &self.recipients {
            match &r.notify {
                Some(n) => {
                    head.push_str(&format!("rcpt {} notify={}\n", r.address, notify_text(n)))
                }
                None => head.push_str(&format!("rcpt {}\n", r.address)),
            }
        }
        if self.extract {
            head.push_str("extract\n");
        }
        if let Some(n) = &self.notify {
            head.push_str(&format!("notify {}\n", notify_text(n)));
        }
        match self.ret {
            Some(Ret::Full) => head.push_str("ret full\n"),
            Some(Ret::Headers) => head.push_str("ret hdrs\n"),
            None => {}
        }
        if let Some(e) = &self.envid {
            head.push_str(&format!("envid {e}\n"));
        }
        match self.body {
            Some(BodyType::SevenBit) => head.push_str("body 7bit\n"),
            Some(BodyType::EightBitMime) => head.push_str("body 8bitmime\n"),
            Some(BodyType::BinaryMime) => head.push_str("body binarymime\n"),
            None => {}
        }
        head.push_str("end\n");
        let mut out = Vec::with_capacity(head.len() + self.message.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.message);
        out
    }

    /// Reads a request (the whole of it: head and message).
    pub(crate) fn decode(data: &[u8]) -> Result<Request, Malformed> {
        let bad = |s: String| Malformed(s);
        let mut req = Request::default();
        let mut pos = 0;
        let mut first = true;
        loop {
            if pos > MAX_HEAD {
                return Err(bad("the request's head is too long".into()));
            }
            let Some(nl) = data[pos..].iter().position(|&b| b == b'\n') else {
                return Err(bad("the request ends before its `end` line".into()));
            };
            let line = std::str::from_utf8(&data[pos..pos + nl])
                .map_err(|_| bad("a head line is not UTF-8".into()))?;
            pos += nl + 1;
            if first {
                if line != MAGIC {
                    return Err(bad(format!("it does not start with {MAGIC:?}")));
                }
                first = false;
                continue;
            }
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "end" => break,
                "from" => {
                    req.from = Some(if value == "<>" {
                        String::new()
                    } else {
                        value.to_string()
                    })
                }
                "fullname" => req.full_name = Some(value.to_string()),
                "rcpt" => {
                    let (address, notify) = match value.split_once(" notify=") {
                        Some((a, n)) => (
                            a,
                            Some(parse_notify(n).ok_or_else(|| bad(format!("bad notify {n:?}")))?),
                        ),
                        None => (value, None),
                    };
                    if address.is_empty() {
                        return Err(bad("an empty recipient".into()));
                    }
                    req.recipients.push(Rcpt {
                        address: address.to_string(),
                        notify,
                    });
                }
                "extract" => req.extract = true,
                "notify" => {
                    req.notify = Some(
                        parse_notify(value).ok_or_else(|| bad(format!("bad notify {value:?}")))?,
                    )
                }
                "ret" => {
                    req.ret = Some(match value {
                        "full" => Ret::Full,
                        "hdrs" => Ret::Headers,
                        _ => return Err(bad(format!("bad ret {value:?}"))),
                    })
                }
                "envid" => req.envid = Some(value.to_string()),
                "body" => {
                    req.body = Some(match value {
                        "7bit" => BodyType::SevenBit,
                        "8bitmime" => BodyType::EightBitMime,
                        "binarymime" => BodyType::BinaryMime,
                        _ => return Err(bad(format!("bad body {value:?}"))),
                    })
                }
                other => return Err(bad(format!("unknown head line {other:?}"))),
            }
        }
        req.message = data[pos..].to_vec();
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let req = Request {
            from: Some(String::new()),
            full_name: Some("Ann Other".into()),
            recipients: vec![
                Rcpt {
                    address: "bob@example.org".into(),
                    notify: None,
                },
                Rcpt {
                    address: "carol@example.org".into(),
                    notify: Some(Notify::NEVER),
                },
            ],
            extract: true,
            notify: Some(Notify {
                success: true,
                failure: true,
                delay: false,
            }),
            ret: Some(Ret::Headers),
            envid: Some("env-1".into()),
            body: Some(BodyType::EightBitMime),
            message: b"Subject: x\n\nend\nbody\n".to_vec(),
        };
        assert_eq!(Request::decode(&req.encode()).unwrap(), req);
        let plain = Request {
            message: b"x".to_vec(),
            ..Request::default()
        };
        assert_eq!(Request::decode(&plain.encode()).unwrap(), plain);
    }

    #[test]
    fn malformed() {
        for bad in [
            &b""[..],
            b"hello\nend\n",
            b"postern-submit 1\nrcpt a@b\n",
            b"postern-submit 1\nsetuid 0\nend\n",
            b"postern-submit 1\nret maybe\nend\n",
            b"postern-submit 1\nrcpt \nend\n",
            b"postern-submit 1\nnotify sometimes\nend\n",
        ] {
            assert!(Request::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn notify_values() {
        assert_eq!(parse_notify("NEVER"), Some(Notify::NEVER));
        let n = parse_notify("success, delay").unwrap();
        assert!(n.success && n.delay && !n.failure);
        assert_eq!(notify_text(&n), "success,delay");
        assert_eq!(parse_notify("never,success"), None);
        assert_eq!(parse_notify(""), None);
    }
}
