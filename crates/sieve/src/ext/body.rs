//! The `body` test (RFC 5173): which texts of the message a body test matches against, for
//! each body transform (§5).

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// RFC 5173 §5: the body transform of a `body` test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BodyTransform {
    /// `:raw`: the body as it is, no MIME decoding.
    Raw,
    /// `:content "type" …`: the decoded MIME parts of these types (`""` = all).
    Content(Vec<String>),
    /// `:text` (the default): the text a reader would see.
    Text,
}

/// The texts a `body` test with `transform` matches against; the test succeeds when any of
/// them matches any key (RFC 5173 §5).
pub(crate) fn extract(message: &[u8], transform: &BodyTransform) -> Vec<String> {
    match transform {
        BodyTransform::Raw => vec![raw_body(message)],
        BodyTransform::Content(types) => {
            let filter = TypeFilter::new(types.iter().map(String::as_str));
            parsed_parts(message, &filter, false)
        }
        // Pigeonhole's :text: every text/* part and application/xhtml+xml, HTML turned into
        // plain text (RFC 5173 §5.3 lets implementations strip mark-up).
        BodyTransform::Text => {
            let filter = TypeFilter::new(["text", "application/xhtml+xml"]);
            parsed_parts(message, &filter, true)
        }
    }
}

/// Pigeonhole's HTML-to-text for `:text` (RFC 5173 §5.3 lets implementations strip mark-up),
/// as observed with its sieve-test: each run of adjacent tags becomes one space, the text's
/// own white space and line ends stay, `<script>` and `<style>` contents and comments go,
/// character references are decoded.
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut after_tag = false;
    while !rest.is_empty() {
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |e| &comment[e + 3..]);
            after_tag = push_tag_space(&mut out, after_tag);
        } else if rest.starts_with('<')
            && rest[1..]
                .starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!' || c == '?')
        {
            let end = rest.find('>').map_or(rest.len(), |e| e + 1);
            let name = tag_name(&rest[1..end]);
            rest = &rest[end..];
            if name == "script" || name == "style" {
                rest = skip_element_body(rest, &name);
            }
            after_tag = push_tag_space(&mut out, after_tag);
        } else if rest.starts_with('&') {
            let (text, used) = char_reference(rest);
            out.push_str(&text);
            rest = &rest[used..];
            after_tag = false;
        } else {
            let next = rest[1..].find(['<', '&']).map_or(rest.len(), |i| i + 1);
            out.push_str(&rest[..next]);
            rest = &rest[next..];
            after_tag = false;
        }
    }
    out
}

/// One space for a run of tags.
fn push_tag_space(out: &mut String, after_tag: bool) -> bool {
    if !after_tag {
        out.push(' ');
    }
    true
}

/// The lower-case element name of a tag's inside (`p class=x` → `p`, `/p` → ``).
fn tag_name(inside: &str) -> String {
    inside
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// What follows the end tag of a `<script>` or `<style>` element.
fn skip_element_body<'a>(rest: &'a str, name: &str) -> &'a str {
    let close = format!("</{name}");
    let lower = rest.to_ascii_lowercase();
    match lower.find(&close) {
        Some(i) => rest[i..].find('>').map_or("", |e| &rest[i + e + 1..]),
        None => "",
    }
}

/// An HTML character reference at the start of `s` (which starts with `&`): its text and its
/// length; an unknown or malformed one stays as written.
fn char_reference(s: &str) -> (String, usize) {
    let Some(semi) = s[1..].find(';').map(|i| i + 1).filter(|&i| i <= 10) else {
        return ("&".into(), 1);
    };
    let name = &s[1..semi];
    let decoded = if let Some(num) = name.strip_prefix('#') {
        let value = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => num.parse().ok(),
        };
        value.and_then(char::from_u32)
    } else {
        match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => named_latin1(name),
        }
    };
    match decoded {
        Some(c) => (c.to_string(), semi + 1),
        None => ("&".into(), 1),
    }
}

/// The named references for Latin-1 letters and common punctuation, the ones mail in
/// European languages uses: `eacute`, `Uuml`, `szlig` …
fn named_latin1(name: &str) -> Option<char> {
    const ACCENTED: [(&str, &str, &str); 8] = [
        ("grave", "AEIOUaeiou", "ÀÈÌÒÙàèìòù"),
        ("acute", "AEIOUYaeiouy", "ÁÉÍÓÚÝáéíóúý"),
        ("circ", "AEIOUaeiou", "ÂÊÎÔÛâêîôû"),
        ("uml", "AEIOUaeiouy", "ÄËÏÖÜäëïöüÿ"),
        ("tilde", "ANOano", "ÃÑÕãñõ"),
        ("ring", "Aa", "Åå"),
        ("cedil", "Cc", "Çç"),
        ("slash", "Oo", "Øø"),
    ];
    let mut chars = name.chars();
    let first = chars.next()?;
    let accent = chars.as_str();
    for (suffix, bases, letters) in ACCENTED {
        if accent == suffix {
            let i = bases.chars().position(|b| b == first)?;
            return letters.chars().nth(i);
        }
    }
    match name {
        "szlig" => Some('ß'),
        "euro" => Some('€'),
        "copy" => Some('©'),
        "reg" => Some('®'),
        "hellip" => Some('…'),
        "mdash" => Some('—'),
        "ndash" => Some('–'),
        "laquo" => Some('«'),
        "raquo" => Some('»'),
        _ => None,
    }
}

/// RFC 5173 §5.1: `:raw` is the body after the header, undecoded.
fn raw_body(message: &[u8]) -> String {
    String::from_utf8_lossy(postern_mail::header::body(message)).into_owned()
}

fn parsed_parts(message: &[u8], filter: &TypeFilter, strip_html: bool) -> Vec<String> {
    let mut out = Vec::new();
    match MessageParser::default().parse(message) {
        Some(parsed) => walk(&parsed, 0, filter, strip_html, &mut out),
        // Not parseable as MIME: the body as plain text, when text is wanted.
        None if filter.matches("text", "plain") => out.push(raw_body(message)),
        None => {}
    }
    out
}

/// One MIME content type (or main type) a `:content` list names.
#[derive(Debug)]
enum TypeSpec {
    /// `""`: every part.
    Any,
    /// `"text"`: every subtype of it.
    Main(String),
    /// `"text/html"`: exactly this.
    Full(String, String),
    /// RFC 5173 §5.2: a type that starts or ends with `/` or has several `/` matches nothing.
    Nothing,
}

/// The `:content` type list, as matchers (case-insensitive, RFC 2045 §5.1).
struct TypeFilter(Vec<TypeSpec>);

impl TypeFilter {
    fn new<'a>(types: impl IntoIterator<Item = &'a str>) -> TypeFilter {
        TypeFilter(
            types
                .into_iter()
                .map(|t| {
                    let t = t.to_ascii_lowercase();
                    if t.is_empty() {
                        return TypeSpec::Any;
                    }
                    match t.split_once('/') {
                        None => TypeSpec::Main(t),
                        Some((main, sub))
                            if !main.is_empty() && !sub.is_empty() && !sub.contains('/') =>
                        {
                            TypeSpec::Full(main.to_string(), sub.to_string())
                        }
                        Some(_) => TypeSpec::Nothing,
                    }
                })
                .collect(),
        )
    }

    fn matches(&self, main: &str, sub: &str) -> bool {
        self.0.iter().any(|spec| match spec {
            TypeSpec::Any => true,
            TypeSpec::Main(m) => m.eq_ignore_ascii_case(main),
            TypeSpec::Full(m, s) => m.eq_ignore_ascii_case(main) && s.eq_ignore_ascii_case(sub),
            TypeSpec::Nothing => false,
        })
    }
}

/// RFC 5173 §5.2: visits part `id` of `message` and everything under it. The search
/// descends into multipart and message/rfc822 parts; a matching multipart contributes its
/// prologue and epilogue, a matching message/rfc822 its header, any other matching part its
/// decoded content.
fn walk(
    message: &Message<'_>,
    id: usize,
    filter: &TypeFilter,
    strip_html: bool,
    out: &mut Vec<String>,
) {
    let Some(part) = message.parts.get(id) else {
        return;
    };
    let (main, sub) = content_type(part);
    let wanted = filter.matches(&main, &sub);
    match &part.body {
        PartType::Multipart(children) => {
            if wanted {
                out.extend(prologue_epilogue(message.raw_message(), part));
            }
            for &child in children {
                // Guard against a malformed tree pointing back up.
                if (child as usize) > id {
                    walk(message, child as usize, filter, strip_html, out);
                }
            }
        }
        PartType::Message(nested) => {
            if wanted {
                let raw = nested.raw_message();
                let header = postern_mail::header::header_section(raw);
                out.push(String::from_utf8_lossy(header).into_owned());
            }
            walk(nested, 0, filter, strip_html, out);
        }
        PartType::Html(html) if wanted => out.push(if strip_html {
            html_to_text(html)
        } else {
            html.to_string()
        }),
        PartType::Text(text) if wanted => out.push(text.to_string()),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) if wanted => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            out.push(if strip_html && main == "application" {
                html_to_text(&text)
            } else {
                text
            });
        }
        _ => {}
    }
}

/// The part's content type, lower-case; RFC 2045 §5.2's default text/plain (message/rfc822
/// inside multipart/digest, RFC 2046 §5.1.5, which the parser already knows) when absent.
fn content_type(part: &MessagePart<'_>) -> (String, String) {
    if let Some(ct) = part.content_type() {
        let main = ct.ctype().to_ascii_lowercase();
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        if !main.is_empty() {
            return (main, sub);
        }
    }
    match part.body {
        PartType::Message(_) => ("message".into(), "rfc822".into()),
        PartType::Multipart(_) => ("multipart".into(), "mixed".into()),
        PartType::Html(_) => ("text".into(), "html".into()),
        _ => ("text".into(), "plain".into()),
    }
}

/// RFC 2046 §5.1.1: the prologue (before the first boundary) and the epilogue (after the
/// closing boundary) of a multipart part, each one string; empty ones are left out.
fn prologue_epilogue(raw: &[u8], part: &MessagePart<'_>) -> Vec<String> {
    let Some(boundary) = part.content_type().and_then(|ct| ct.attribute("boundary")) else {
        return Vec::new();
    };
    let start = (part.offset_body as usize).min(raw.len());
    let end = (part.offset_end as usize).clamp(start, raw.len());
    let body = &raw[start..end];
    let delimiter = format!("--{boundary}");
    let mut prologue_end = None;
    let mut epilogue_start = None;
    let mut pos = 0;
    for line in body.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text).trim_ascii_end();
        if let Some(rest) = text.strip_prefix(delimiter.as_bytes()) {
            if prologue_end.is_none() && rest.is_empty() {
                prologue_end = Some(pos);
            }
            if rest == b"--" {
                epilogue_start = Some(pos + line.len());
            }
        }
        pos += line.len();
    }
    let mut out = Vec::new();
    if let Some(p) = prologue_end {
        out.push(&body[..p]);
    }
    if let Some(e) = epilogue_start {
        out.push(&body[e..]);
    }
    out.into_iter()
        .filter(|s| !s.iter().all(u8::is_ascii_whitespace))
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALTERNATIVE: &[u8] = b"From: a@example.org\r\n\
Subject: alt\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
\r\n\
This is the prologue.\r\n\
--b1\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Caf=E9 at noon\r\n\
--b1\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PHA+PGI+Q2Fmw6k8L2I+IGF0IG5vb248L3A+\r\n\
--b1--\r\n\
The epilogue.\r\n";

    fn content(types: &[&str]) -> Vec<String> {
        extract(
            ALTERNATIVE,
            &BodyTransform::Content(types.iter().map(|s| s.to_string()).collect()),
        )
    }

    /// RFC 5173 §5.1: :raw is the undecoded body, boundaries and all.
    #[test]
    fn raw_is_undecoded() {
        let raw = extract(ALTERNATIVE, &BodyTransform::Raw);
        assert_eq!(raw.len(), 1);
        assert!(raw[0].starts_with("This is the prologue.\r\n--b1\r\n"));
        assert!(raw[0].contains("Caf=E9"));
        assert!(raw[0].contains("PHA+PGI+"));
    }

    /// RFC 5173 §5.2: "text" matches every text/* part, decoded to UTF-8 (quoted-printable
    /// latin-1 and base64 UTF-8 here); HTML is not stripped under :content.
    #[test]
    fn content_main_type() {
        let texts = content(&["text"]);
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts[0].starts_with("Café at noon"));
        assert_eq!(texts[1], "<p><b>Café</b> at noon</p>");
    }

    /// RFC 5173 §5.2: "text/html" matches exactly; case does not matter.
    #[test]
    fn content_full_type() {
        assert_eq!(content(&["TEXT/HTML"]), vec!["<p><b>Café</b> at noon</p>"]);
        assert_eq!(content(&["text/plain", "image"]).len(), 1);
    }

    /// RFC 5173 §5.2: a matching multipart contributes its prologue and epilogue only.
    #[test]
    fn content_multipart_is_prologue_and_epilogue() {
        let texts = content(&["multipart"]);
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts[0].contains("This is the prologue."));
        assert!(texts[1].contains("The epilogue."));
        // "" matches every part: the multipart's two texts and both leaves.
        assert_eq!(content(&[""]).len(), 4);
    }

    /// RFC 5173 §5.2: types starting or ending with "/" or with two slashes match nothing.
    #[test]
    fn malformed_types_match_nothing() {
        for t in ["/plain", "text/", "text/plain/x", "/"] {
            assert!(content(&[t]).is_empty(), "{t}");
        }
    }

    /// Pigeonhole's :text: the text parts, HTML reduced to its text.
    #[test]
    fn text_strips_html() {
        let texts = extract(ALTERNATIVE, &BodyTransform::Text);
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts[0].starts_with("Café at noon"));
        assert!(!texts[1].contains('<'), "{}", texts[1]);
        // "<p><b>Café</b> at noon</p>": one space per run of tags, as Pigeonhole does.
        assert_eq!(texts[1], " Café  at noon ");
    }

    /// Pigeonhole's HTML-to-text, as its sieve-test shows it: tags → one space per run,
    /// white space of the text kept, script/style dropped, references decoded.
    #[test]
    fn html_reduction() {
        assert_eq!(html_to_text("<div>Ca<i>f</i>es</div>"), " Ca f es ");
        assert_eq!(
            html_to_text(
                "<head><style>p {x}</style><title>T1</title></head>a  b<script>var z;</script>"
            ),
            " T1 a  b "
        );
        assert_eq!(
            html_to_text("x &lt;y&gt; &#65;&#x42; &quot;q&quot; &Eacute;&uuml;&szlig; &bogus; & z"),
            "x <y> AB \"q\" Éüß &bogus; & z"
        );
        assert_eq!(
            html_to_text("one<!-- hidden -->two\r\nthree"),
            "one two\r\nthree"
        );
        assert_eq!(html_to_text("a < b"), "a < b");
    }

    /// RFC 5173 §5.2: text is converted to UTF-8 from its charset, multi-byte ones included.
    #[test]
    fn charsets_become_utf8() {
        // "日本語" in ISO-2022-JP, as Japanese mail is usually sent.
        let jp = b"Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n\x1b$BF|K\\8l\x1b(B\r\n";
        assert_eq!(extract(jp, &BodyTransform::Text), vec!["日本語\r\n"]);
        let win = b"Content-Type: text/plain; charset=windows-1252\r\n\r\n\x93quoted\x94 \x80\r\n";
        assert_eq!(extract(win, &BodyTransform::Text), vec!["“quoted” €\r\n"]);
    }

    /// A message without Content-Type is text/plain (RFC 2045 §5.2).
    #[test]
    fn plain_message() {
        let m = b"Subject: x\n\nHello there\n";
        assert_eq!(extract(m, &BodyTransform::Text), vec!["Hello there\n"]);
        assert_eq!(
            extract(m, &BodyTransform::Content(vec!["text/plain".into()])),
            vec!["Hello there\n"]
        );
        assert!(extract(m, &BodyTransform::Content(vec!["image".into()])).is_empty());
        assert_eq!(extract(m, &BodyTransform::Raw), vec!["Hello there\n"]);
    }

    /// RFC 5173 §5.2: a matching message/rfc822 part contributes its header; the search
    /// descends into its body, whose parts match on their own types.
    #[test]
    fn nested_message() {
        let m = b"Subject: outer\r\n\
Content-Type: multipart/mixed; boundary=\"o\"\r\n\
\r\n\
--o\r\n\
Content-Type: text/plain\r\n\
\r\n\
outer text\r\n\
--o\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
Content-Type: text/plain\r\n\
\r\n\
inner text\r\n\
--o\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aGlkZGVu\r\n\
--o--\r\n";
        let msg = extract(m, &BodyTransform::Content(vec!["message/rfc822".into()]));
        assert_eq!(msg.len(), 1, "{msg:?}");
        assert!(msg[0].starts_with("Subject: inner\r\n"));
        assert!(!msg[0].contains("inner text"));
        let text = extract(m, &BodyTransform::Content(vec!["text".into()]));
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].contains("outer text") && text[1].contains("inner text"));
        // Non-text parts are transfer-decoded.
        let app = extract(m, &BodyTransform::Content(vec!["application".into()]));
        assert_eq!(app, vec!["hidden"]);
        // :text leaves the attachment out.
        assert_eq!(extract(m, &BodyTransform::Text).len(), 2);
    }
}
#[cfg(test)]
mod corpus_tests {
    use super::{extract, BodyTransform};

    fn corpus(name: &str) -> Vec<u8> {
        let dir = env!("CARGO_MANIFEST_DIR");
        std::fs::read(format!("{dir}/tests/corpus/messages/{name}.eml")).unwrap()
    }

    fn contains(message: &[u8], transform: BodyTransform, needle: &str) -> bool {
        extract(message, &transform)
            .iter()
            .any(|t| t.contains(needle))
    }

    fn content(t: &str) -> BodyTransform {
        BodyTransform::Content(vec![t.to_string()])
    }

    /// RFC 5173 §5 on a multipart/mixed with an attachment and a nested message: each
    /// answer here is what Pigeonhole's sieve-test gives for `body … :contains`.
    #[test]
    fn nested_parts_as_pigeonhole_sees_them() {
        let m = corpus("13-attachment-nested");
        assert!(contains(&m, BodyTransform::Text, "We pay within"));
        assert!(contains(&m, content("message"), "Subject: Payment"));
        assert!(!contains(&m, content("message"), "We pay"));
        assert!(contains(&m, content("multipart"), "Prologue text"));
        assert!(contains(&m, content("multipart"), "Epilogue text"));
        assert!(!contains(&m, content("multipart"), "Please find"));
        assert!(contains(&m, content(""), "%PDF"));
        assert!(contains(&m, content("application"), "PDF-1.4"));
        assert!(!contains(&m, BodyTransform::Text, "Prologue"));
        assert!(contains(&m, content("text"), "Please find"));
        assert!(contains(&m, content("text/plain"), "We pay"));
        assert!(contains(&m, BodyTransform::Raw, "JVBERi0"));
        let bounce = corpus("14-bounce");
        assert!(contains(&bounce, content("message"), "Reporting-MTA"));
    }
}
