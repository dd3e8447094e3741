use serde::Serialize;
use std::fmt;

/// The network services postern offers, each with its `[listen]` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// SMTP for MX reception (RFC 5321), STARTTLS offered.
    Smtp,
    /// Message submission (RFC 6409), STARTTLS, AUTH required.
    Submission,
    /// Submission over implicit TLS (RFC 8314).
    Submissions,
    /// IMAP4 (RFC 9051) with STARTTLS.
    Imap,
    /// IMAP4 over implicit TLS (RFC 8314).
    Imaps,
    /// POP3 (RFC 1939) with STLS.
    Pop3,
    /// POP3 over implicit TLS (RFC 8314).
    Pop3s,
    /// ManageSieve (RFC 5804) with STARTTLS.
    ManageSieve,
    /// LMTP (RFC 2033): local delivery for another MTA; off unless `[listen] lmtp` is set.
    Lmtp,
    /// HTTPS (RFC 9110, RFC 9112 over TLS): MTA-STS policy (RFC 8461) and client
    /// autoconfiguration; off unless `[listen] https` is set.
    Https,
    /// Plain HTTP: redirects to `[listen] https` (and, later, ACME HTTP-01); off unless set.
    Http,
}

impl Service {
    /// Every service, in declaration order (the order of [`crate::Config::enabled_services`]).
    pub const ALL: [Service; 11] = [
        Service::Smtp,
        Service::Submission,
        Service::Submissions,
        Service::Imap,
        Service::Imaps,
        Service::Pop3,
        Service::Pop3s,
        Service::ManageSieve,
        Service::Lmtp,
        Service::Https,
        Service::Http,
    ];

    /// The `[listen]` key naming this service.
    pub fn key(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Submissions => "submissions",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Pop3 => "pop3",
            Service::Pop3s => "pop3s",
            Service::ManageSieve => "managesieve",
            Service::Lmtp => "lmtp",
            Service::Https => "https",
            Service::Http => "http",
        }
    }

    /// The IANA port of the service.
    pub fn standard_port(self) -> u16 {
        match self {
            Service::Smtp => 25,
            Service::Submission => 587,
            Service::Submissions => 465,
            Service::Imap => 143,
            Service::Imaps => 993,
            Service::Pop3 => 110,
            Service::Pop3s => 995,
            Service::ManageSieve => 4190,
            Service::Lmtp => 24,
            Service::Https => 443,
            Service::Http => 80,
        }
    }

    /// Whether the service listens when `[listen]` does not name it: every service but LMTP,
    /// which only serves another MTA that is configured to use it, and HTTP(S).
    pub fn enabled_by_default(self) -> bool {
        !matches!(self, Service::Lmtp | Service::Https | Service::Http)
    }

    /// Whether the connection starts with a TLS handshake (RFC 8314) rather than plaintext.
    pub fn implicit_tls(self) -> bool {
        matches!(
            self,
            Service::Submissions | Service::Imaps | Service::Pop3s | Service::Https
        )
    }

    /// The port used instead of a privileged standard port when running on built-in defaults without
    /// the privilege to bind below 1024: the standard port + 10000 (25 → 10025, 993 → 10993).
    pub fn unprivileged_port(port: u16) -> Option<u16> {
        (port < 1024).then_some(port + 10000)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}
