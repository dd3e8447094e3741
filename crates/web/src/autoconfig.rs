//! Mail client autoconfiguration: Thunderbird's `config-v1.1.xml`, Microsoft's POX
//! Autodiscover and Apple's `.mobileconfig` profile. Each names the IMAP, POP3 and submission
//! ports postern really listens on (implicit TLS preferred, STARTTLS otherwise) and the host
//! name, for the local domains only.

use crate::mta_sts::{hex, sha256};
use crate::router::{error, response, Handler, Request, Response};
use async_trait::async_trait;
use hyper::StatusCode;
use postern_config::Service;
use postern_directory::Directory;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

/// Autodiscover request bodies are a few hundred bytes; anything over this is refused (413).
pub(crate) const MAX_AUTODISCOVER_BODY: usize = 16 * 1024;

/// Where clients connect for one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// The port.
    pub port: u16,
    /// TLS from the first byte (RFC 8314) rather than STARTTLS.
    pub implicit_tls: bool,
}

/// The mail services the documents announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The server's host name, the one its certificate names.
    pub hostname: String,
    /// IMAP (imaps preferred).
    pub imap: Option<Endpoint>,
    /// POP3 (pop3s preferred).
    pub pop3: Option<Endpoint>,
    /// Submission (submissions preferred, RFC 8314 §3.3).
    pub smtp: Option<Endpoint>,
    /// The HTTPS listener's port, where plain HTTP redirects to.
    pub https: Option<u16>,
}

impl Endpoints {
    /// The endpoints of the listeners `serve` bound (their real ports, so port 0 in the
    /// configuration is announced as the port the system chose).
    pub fn from_listeners(hostname: &str, listeners: &[(Service, SocketAddr)]) -> Endpoints {
        let pick = |tls: Service, plain: Service| {
            let port = |s: Service| {
                listeners
                    .iter()
                    .find(|(service, _)| *service == s)
                    .map(|(_, a)| a.port())
            };
            port(tls)
                .map(|port| Endpoint {
                    port,
                    implicit_tls: true,
                })
                .or_else(|| {
                    port(plain).map(|port| Endpoint {
                        port,
                        implicit_tls: false,
                    })
                })
        };
        Endpoints {
            hostname: hostname.to_string(),
            imap: pick(Service::Imaps, Service::Imap),
            pop3: pick(Service::Pop3s, Service::Pop3),
            smtp: pick(Service::Submissions, Service::Submission),
            https: listeners
                .iter()
                .find(|(s, _)| *s == Service::Https)
                .map(|(_, a)| a.port()),
        }
    }
}

/// XML character escaping (XML 1.0 §2.4) for text and attribute values.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A mailbox address as clients send it: `local@domain`, the domain lower-cased. `None` for
/// anything else (spaces, controls, no `@`, an invalid domain, too long).
pub(crate) fn parse_address(s: &str) -> Option<(String, String)> {
    let s = s.trim();
    if s.len() > 254 {
        return None;
    }
    let (local, domain) = s.rsplit_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c));
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    (local_ok && domain_ok).then(|| (local.to_string(), domain))
}

/// Answers 404 unless `domain` is local; the error response otherwise.
async fn check_local(directory: &dyn Directory, domain: &str) -> Result<(), Response> {
    match directory.is_local_domain(domain).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(error(StatusCode::NOT_FOUND, "not a domain of this server")),
        Err(e) => {
            tracing::warn!("directory lookup failed: {e}");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the directory is not available",
            ))
        }
    }
}

/// Thunderbird's autoconfig file (`config-v1.1.xml`, the clientConfig format of Mozilla's
/// ISPDB): on `autoconfig.<domain>/mail/config-v1.1.xml` and
/// `<domain>/.well-known/autoconfig/mail/config-v1.1.xml`, `?emailaddress=` optional.
pub(crate) struct Thunderbird {
    pub(crate) endpoints: Endpoints,
    pub(crate) directory: Arc<dyn Directory>,
}

#[async_trait]
impl Handler for Thunderbird {
    async fn handle(&self, request: Request) -> Response {
        let domain = match request.query("emailaddress") {
            Some(address) => match parse_address(address) {
                Some((_, domain)) => domain,
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "emailaddress is not a mail address",
                    )
                }
            },
            None => request
                .host
                .strip_prefix("autoconfig.")
                .unwrap_or(&request.host)
                .to_string(),
        };
        if let Err(r) = check_local(self.directory.as_ref(), &domain).await {
            return r;
        }
        response(
            StatusCode::OK,
            "application/xml; charset=utf-8",
            thunderbird_xml(&self.endpoints, &domain),
        )
    }
}

fn thunderbird_xml(e: &Endpoints, domain: &str) -> String {
    let d = xml_escape(domain);
    let host = xml_escape(&e.hostname);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(
        x,
        "<clientConfig version=\"1.1\">\n <emailProvider id=\"{d}\">\n  <domain>{d}</domain>\n  \
         <displayName>{d} mail</displayName>\n  <displayShortName>{d}</displayShortName>\n"
    );
    let server = |x: &mut String, tag: &str, kind: &str, ep: Endpoint| {
        let socket = if ep.implicit_tls { "SSL" } else { "STARTTLS" };
        let _ = write!(
            x,
            "  <{tag} type=\"{kind}\">\n   <hostname>{host}</hostname>\n   <port>{}</port>\n   \
             <socketType>{socket}</socketType>\n   <authentication>password-cleartext</authentication>\n   \
             <username>%EMAILADDRESS%</username>\n  </{tag}>\n",
            ep.port
        );
    };
    if let Some(ep) = e.imap {
        server(&mut x, "incomingServer", "imap", ep);
    }
    if let Some(ep) = e.pop3 {
        server(&mut x, "incomingServer", "pop3", ep);
    }
    if let Some(ep) = e.smtp {
        server(&mut x, "outgoingServer", "smtp", ep);
    }
    x.push_str(" </emailProvider>\n</clientConfig>\n");
    x
}

/// Microsoft's "Plain Old XML" Autodiscover for Outlook (`POST /autodiscover/autodiscover.xml`,
/// schema `.../outlook/requestschema/2006`).
pub(crate) struct Autodiscover {
    pub(crate) endpoints: Endpoints,
    pub(crate) directory: Arc<dyn Directory>,
}

/// Why an Autodiscover request body was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AutodiscoverError {
    /// The body is not UTF-8.
    #[error("the body is not UTF-8")]
    NotUtf8,
    /// The body is not well-formed XML, or has a DOCTYPE.
    #[error("the body is not well-formed XML: {0}")]
    Xml(String),
    /// No `Autodiscover/Request/EMailAddress` text.
    #[error("the request has no EMailAddress")]
    NoAddress,
}

/// The text of the request's `Autodiscover/Request/EMailAddress` element (namespaces
/// ignored, entity and character references resolved; no DTD is ever processed).
pub fn autodiscover_address(body: &[u8]) -> Result<String, AutodiscoverError> {
    use quick_xml::events::Event;
    let text = std::str::from_utf8(body).map_err(|_| AutodiscoverError::NotUtf8)?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut address: Option<String> = None;
    let wanted: [&[u8]; 3] = [b"Autodiscover", b"Request", b"EMailAddress"];
    let in_address = |path: &[Vec<u8>]| {
        path.len() == 3 && path.iter().zip(wanted).all(|(a, b)| a.as_slice() == b)
    };
    let bad = |e: &dyn std::fmt::Display| AutodiscoverError::Xml(e.to_string());
    loop {
        match reader.read_event().map_err(|e| bad(&e))? {
            Event::Start(e) => {
                if path.len() >= 32 {
                    return Err(AutodiscoverError::Xml("nested too deeply".into()));
                }
                path.push(e.local_name().as_ref().to_vec());
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) if in_address(&path) => {
                let s = t.decode().map_err(|e| bad(&e))?;
                address.get_or_insert_with(String::new).push_str(&s);
            }
            Event::CData(t) if in_address(&path) => {
                let s = t.decode().map_err(|e| bad(&e))?;
                address.get_or_insert_with(String::new).push_str(&s);
            }
            Event::GeneralRef(r) if in_address(&path) => {
                let c = match r.resolve_char_ref().map_err(|e| bad(&e))? {
                    Some(c) => c,
                    None => match r.decode().map_err(|e| bad(&e))?.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => {
                            return Err(AutodiscoverError::Xml(format!("unknown entity &{other};")))
                        }
                    },
                };
                address.get_or_insert_with(String::new).push(c);
            }
            Event::DocType(_) => {
                return Err(AutodiscoverError::Xml("a DOCTYPE is not accepted".into()))
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(AutodiscoverError::Xml("unclosed elements".into()));
    }
    address
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .ok_or(AutodiscoverError::NoAddress)
}

#[async_trait]
impl Handler for Autodiscover {
    async fn handle(&self, request: Request) -> Response {
        let address = match autodiscover_address(&request.body) {
            Ok(a) => a,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let Some((_, domain)) = parse_address(&address) else {
            return error(
                StatusCode::BAD_REQUEST,
                "EMailAddress is not a mail address",
            );
        };
        if let Err(r) = check_local(self.directory.as_ref(), &domain).await {
            return r;
        }
        response(
            StatusCode::OK,
            "application/xml; charset=utf-8",
            autodiscover_xml(&self.endpoints, &address),
        )
    }
}

fn autodiscover_xml(e: &Endpoints, address: &str) -> String {
    let login = xml_escape(address);
    let host = xml_escape(&e.hostname);
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n \
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n  \
         <Account>\n   <AccountType>email</AccountType>\n   <Action>settings</Action>\n",
    );
    for (kind, ep) in [("IMAP", e.imap), ("POP3", e.pop3), ("SMTP", e.smtp)] {
        let Some(ep) = ep else { continue };
        // "SSL": TLS from the start; "TLS": STARTTLS.
        let enc = if ep.implicit_tls { "SSL" } else { "TLS" };
        let _ = write!(
            x,
            "   <Protocol>\n    <Type>{kind}</Type>\n    <Server>{host}</Server>\n    <Port>{}</Port>\n    \
             <LoginName>{login}</LoginName>\n    <DomainRequired>off</DomainRequired>\n    <SPA>off</SPA>\n    \
             <Encryption>{enc}</Encryption>\n    <AuthRequired>on</AuthRequired>\n   </Protocol>\n",
            ep.port
        );
    }
    x.push_str("  </Account>\n </Response>\n</Autodiscover>\n");
    x
}

/// Apple's configuration profile for Mail (`GET /apple/mobileconfig?email=`): an unsigned
/// property list with one `com.apple.mail.managed` payload.
pub(crate) struct MobileConfig {
    pub(crate) endpoints: Endpoints,
    pub(crate) directory: Arc<dyn Directory>,
}

#[async_trait]
impl Handler for MobileConfig {
    async fn handle(&self, request: Request) -> Response {
        let Some(address) = request.query("email") else {
            return error(StatusCode::BAD_REQUEST, "the email parameter is missing");
        };
        let Some((_, domain)) = parse_address(address) else {
            return error(StatusCode::BAD_REQUEST, "email is not a mail address");
        };
        if let Err(r) = check_local(self.directory.as_ref(), &domain).await {
            return r;
        }
        let Some(plist) = mobileconfig(&self.endpoints, address.trim(), &domain) else {
            return error(
                StatusCode::NOT_FOUND,
                "this server has no IMAP or POP3 and submission listener to configure",
            );
        };
        let mut r = response(StatusCode::OK, "application/x-apple-aspen-config", plist);
        let name = format!("attachment; filename=\"{domain}.mobileconfig\"");
        if let Ok(v) = hyper::header::HeaderValue::from_str(&name) {
            r.headers_mut()
                .insert(hyper::header::CONTENT_DISPOSITION, v);
        }
        r
    }
}

/// A UUID (RFC 9562 §5.8 layout, version 8) derived from `seed`, so the same account always
/// gets the same profile identifiers and a reinstall replaces rather than duplicates.
fn uuid(seed: &str) -> String {
    let mut b = sha256(seed.as_bytes());
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
    .to_ascii_uppercase()
}

fn mobileconfig(e: &Endpoints, address: &str, domain: &str) -> Option<String> {
    let (kind, incoming) = match (e.imap, e.pop3) {
        (Some(ep), _) => ("EmailTypeIMAP", ep),
        (None, Some(ep)) => ("EmailTypePOP", ep),
        (None, None) => return None,
    };
    let outgoing = e.smtp?;
    let a = xml_escape(address);
    let host = xml_escape(&e.hostname);
    let d = xml_escape(domain);
    // The identifier is reverse-DNS of the domain, as Apple's profiles use.
    let reverse: Vec<&str> = domain.rsplit('.').collect();
    let ident = xml_escape(&reverse.join("."));
    let boolean = |b: bool| if b { "<true/>" } else { "<false/>" };
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
<plist version=\"1.0\">\n<dict>\n\
 <key>PayloadContent</key>\n <array>\n  <dict>\n\
  <key>EmailAccountDescription</key><string>{a}</string>\n\
  <key>EmailAccountName</key><string>{a}</string>\n\
  <key>EmailAccountType</key><string>{kind}</string>\n\
  <key>EmailAddress</key><string>{a}</string>\n\
  <key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>\n\
  <key>IncomingMailServerHostName</key><string>{host}</string>\n\
  <key>IncomingMailServerPortNumber</key><integer>{}</integer>\n\
  <key>IncomingMailServerUseSSL</key>{}\n\
  <key>IncomingMailServerUsername</key><string>{a}</string>\n\
  <key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>\n\
  <key>OutgoingMailServerHostName</key><string>{host}</string>\n\
  <key>OutgoingMailServerPortNumber</key><integer>{}</integer>\n\
  <key>OutgoingMailServerUseSSL</key>{}\n\
  <key>OutgoingMailServerUsername</key><string>{a}</string>\n\
  <key>OutgoingPasswordSameAsIncomingPassword</key><true/>\n\
  <key>PayloadDescription</key><string>Mail account {a}</string>\n\
  <key>PayloadDisplayName</key><string>{a}</string>\n\
  <key>PayloadIdentifier</key><string>{ident}.mail.account</string>\n\
  <key>PayloadType</key><string>com.apple.mail.managed</string>\n\
  <key>PayloadUUID</key><string>{}</string>\n\
  <key>PayloadVersion</key><integer>1</integer>\n\
  </dict>\n </array>\n\
 <key>PayloadDescription</key><string>Mail settings for {a}</string>\n\
 <key>PayloadDisplayName</key><string>{d} mail</string>\n\
 <key>PayloadIdentifier</key><string>{ident}.mail</string>\n\
 <key>PayloadOrganization</key><string>{d}</string>\n\
 <key>PayloadRemovalDisallowed</key><false/>\n\
 <key>PayloadType</key><string>Configuration</string>\n\
 <key>PayloadUUID</key><string>{}</string>\n\
 <key>PayloadVersion</key><integer>1</integer>\n\
</dict>\n</plist>\n",
        incoming.port,
        boolean(incoming.implicit_tls),
        outgoing.port,
        boolean(outgoing.implicit_tls),
        uuid(&format!("account {address}")),
        uuid(&format!("profile {address}")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        let a = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Endpoints::from_listeners(
            "mx.a.test",
            &[
                (Service::Imap, a(143)),
                (Service::Imaps, a(993)),
                (Service::Pop3, a(110)),
                (Service::Submission, a(587)),
            ],
        )
    }

    #[test]
    fn implicit_tls_preferred() {
        let e = endpoints();
        assert_eq!(
            e.imap,
            Some(Endpoint {
                port: 993,
                implicit_tls: true
            })
        );
        assert_eq!(
            e.pop3,
            Some(Endpoint {
                port: 110,
                implicit_tls: false
            })
        );
        assert_eq!(e.smtp.unwrap().port, 587);
        let x = thunderbird_xml(&e, "a.test");
        assert!(
            x.contains("<port>993</port>\n   <socketType>SSL</socketType>"),
            "{x}"
        );
        assert!(
            x.contains("<port>587</port>\n   <socketType>STARTTLS</socketType>"),
            "{x}"
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address(" Joe.Bloggs+x@A.Test. "),
            Some(("Joe.Bloggs+x".into(), "a.test".into()))
        );
        for bad in [
            "",
            "a",
            "@a.test",
            "a@",
            "a b@a.test",
            "a@a_b.test",
            "a@test",
            "<a>@a.test",
        ] {
            assert_eq!(parse_address(bad), None, "{bad}");
        }
    }

    #[test]
    fn autodiscover_request() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>j&#111;e&amp;co@a.test</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;
        assert_eq!(autodiscover_address(body).unwrap(), "joe&co@a.test");
        let prefixed = b"<a:Autodiscover xmlns:a='x'><a:Request><a:EMailAddress>u@a.test</a:EMailAddress></a:Request></a:Autodiscover>";
        assert_eq!(autodiscover_address(prefixed).unwrap(), "u@a.test");
        assert_eq!(
            autodiscover_address(b"<Autodiscover><Request></Request></Autodiscover>"),
            Err(AutodiscoverError::NoAddress)
        );
        assert_eq!(
            autodiscover_address(b"\xff\xfe"),
            Err(AutodiscoverError::NotUtf8)
        );
        for bad in [
            &b"<Autodiscover><Request><EMailAddress>u@a.test</Request></Autodiscover>"[..],
            b"<Autodiscover><Request><EMailAddress>u@a.test",
            b"<!DOCTYPE x [<!ENTITY e 'u@a.test'>]><Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>",
        ] {
            assert!(
                matches!(autodiscover_address(bad), Err(AutodiscoverError::Xml(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn everything_from_the_request_is_escaped() {
        let e = endpoints();
        let x = autodiscover_xml(&e, "a&'\"<b>@a.test");
        assert!(
            x.contains("<LoginName>a&amp;&apos;&quot;&lt;b&gt;@a.test</LoginName>"),
            "{x}"
        );
        let p = mobileconfig(&e, "x&y@a.test", "a.test").unwrap();
        assert!(p.contains("<string>x&amp;y@a.test</string>"));
        assert!(!p.contains("x&y"));
        assert!(p.contains("<key>IncomingMailServerUseSSL</key><true/>"));
        assert!(p.contains("<key>OutgoingMailServerUseSSL</key><false/>"));
        assert_eq!(uuid("s").len(), 36);
        assert_eq!(uuid("s"), uuid("s"));
        assert_ne!(uuid("s"), uuid("t"));
    }
}
