//! Header fields as editheader, vacation and notify write and read them: RFC 2047 encoded
//! words for non-ASCII text, RFC 5322 §2.2.3 folding that keeps the value's own white space,
//! and the decoded text of a raw field value.

use mail_parser::parsers::MessageStream;
use mail_parser::HeaderValue;

/// RFC 5322 §2.1.1: lines SHOULD stay within 78 characters.
const LINE_WIDTH: usize = 78;
/// RFC 2047 §2: an encoded word is at most 75 characters.
const MAX_ENCODED_WORD: usize = 75;

/// The line end a message uses: CRLF unless its first line ends in a bare LF.
pub(crate) fn line_end_of(message: &[u8]) -> &'static str {
    match message.iter().position(|&b| b == b'\n') {
        Some(i) if i == 0 || message[i - 1] != b'\r' => "\n",
        _ => "\r\n",
    }
}

/// A whole header field, `Name: value` plus `line_end`, ready to insert: line breaks in the
/// value become spaces (a field cannot hold them), non-ASCII text is RFC 2047 encoded, and
/// long lines are folded at white space.
pub(crate) fn field(name: &str, value: &str, line_end: &str) -> String {
    let flat: String = value
        .replace("\r\n", " ")
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    fold(&format!("{name}: {}", encode_text(&flat)), line_end)
}

/// RFC 2047 §5(1) for unstructured text: ASCII words stay as they are, each run of words with
/// non-ASCII characters (and the blanks inside the run) becomes encoded words, so a reader
/// gets the same text back.
pub(crate) fn encode_text(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut run = String::new();
    // Blanks seen since the last word, held back until we know whether they join a run.
    let mut blanks = String::new();
    for piece in text.split_inclusive([' ', '\t']) {
        let word = piece.trim_end_matches([' ', '\t']);
        let trailing = &piece[word.len()..];
        if word.is_empty() {
            blanks.push_str(trailing);
            continue;
        }
        if word.is_ascii() {
            if !run.is_empty() {
                out.push_str(&encode_words(&run));
                run.clear();
            }
            out.push_str(&blanks);
            out.push_str(word);
        } else {
            if run.is_empty() {
                out.push_str(&blanks);
            } else {
                run.push_str(&blanks);
            }
            run.push_str(word);
        }
        blanks.clear();
        blanks.push_str(trailing);
    }
    if !run.is_empty() {
        out.push_str(&encode_words(&run));
    }
    out.push_str(&blanks);
    out
}

/// RFC 2047 §4.2 "Q" encoded words in UTF-8 for `text`, each at most 75 characters (§2),
/// separated by spaces (which §6.2 says a reader drops between encoded words). A character
/// is never split across two words (§5).
pub(crate) fn encode_words(text: &str) -> String {
    const PREFIX: &str = "=?UTF-8?Q?";
    const SUFFIX: &str = "?=";
    let room = MAX_ENCODED_WORD - PREFIX.len() - SUFFIX.len();
    let mut words = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        let encoded = q_encode_char(c);
        if current.len() + encoded.len() > room {
            words.push(format!("{PREFIX}{current}{SUFFIX}"));
            current.clear();
        }
        current.push_str(&encoded);
    }
    if !current.is_empty() || words.is_empty() {
        words.push(format!("{PREFIX}{current}{SUFFIX}"));
    }
    words.join(" ")
}

/// RFC 2047 §4.2 and §5(3): letters, digits and `!*+-/` stay, space is `_`, the rest `=XX`.
fn q_encode_char(c: char) -> String {
    match c {
        ' ' => "_".into(),
        c if c.is_ascii_alphanumeric() || "!*+-/".contains(c) => c.to_string(),
        c => c
            .encode_utf8(&mut [0; 4])
            .bytes()
            .map(|b| format!("={b:02X}"))
            .collect(),
    }
}

/// RFC 5322 §2.2.3 folding of one unfolded field line: where a line would exceed 78
/// characters, a line end goes before the last white space that keeps it shorter, so the
/// white space itself (and therefore the unfolded value) stays. A word longer than a line
/// stays whole.
pub(crate) fn fold(line: &str, line_end: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut rest = line;
    // Never break right after `Name:`, which would leave the first line without a value.
    let mut floor = line.find(':').map_or(0, |colon| colon + 1);
    while rest.len() > LINE_WIDTH {
        // Break at the last blank within the width, else at the first one after it.
        let window = &rest[..=floor_char_boundary(rest, LINE_WIDTH)];
        let at = window
            .rfind([' ', '\t'])
            .filter(|&i| i > floor)
            .or_else(|| rest[floor + 1..].find([' ', '\t']).map(|i| i + floor + 1));
        floor = 0;
        let Some(at) = at else { break };
        out.push_str(&rest[..at]);
        out.push_str(line_end);
        rest = &rest[at..];
    }
    out.push_str(rest);
    out.push_str(line_end);
    out
}

/// The largest char boundary at or below `i`.
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len().saturating_sub(1));
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The text of a raw (possibly folded) unstructured field value: unfolded, trimmed, RFC 2047
/// encoded words decoded.
pub(crate) fn decode_value(raw: &[u8]) -> String {
    let unfolded = postern_mail::header::unfold(&String::from_utf8_lossy(raw));
    if !unfolded.contains("=?") {
        return unfolded.trim().to_string();
    }
    let mut owned = unfolded.into_bytes();
    owned.push(b'\n');
    match MessageStream::new(&owned).parse_unstructured() {
        HeaderValue::Text(text) => text.trim().to_string(),
        _ => String::from_utf8_lossy(raw).trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends() {
        assert_eq!(line_end_of(b"A: b\r\n\r\n"), "\r\n");
        assert_eq!(line_end_of(b"A: b\n\n"), "\n");
        assert_eq!(line_end_of(b""), "\r\n");
    }

    /// RFC 2047 §4.2 Q encoding, and §2's 75-character limit on each word.
    #[test]
    fn encoded_words() {
        assert_eq!(
            encode_words("Café au lait"),
            "=?UTF-8?Q?Caf=C3=A9_au_lait?="
        );
        let long = "é".repeat(40);
        let words = encode_words(&long);
        assert!(words.split(' ').all(|w| w.len() <= 75), "{words}");
        assert_eq!(decode_value(words.as_bytes()), long);
    }

    /// RFC 5322 §2.2.3: folding only adds line ends before white space, so unfolding gives
    /// the value back, double spaces included.
    #[test]
    fn folding_keeps_the_value() {
        let value = format!("{}  tail", "word ".repeat(30));
        let folded = field("X-Test", &value, "\r\n");
        assert!(folded.split("\r\n").all(|l| l.len() <= 78), "{folded}");
        let unfolded = folded.trim_end_matches("\r\n").replace("\r\n", "");
        assert_eq!(unfolded, format!("X-Test: {value}"));
        assert_eq!(field("A", "b\r\nc\nd", "\n"), "A: b c d\n");
        let long = "x".repeat(100);
        assert_eq!(field("S", &long, "\n"), format!("S: {long}\n"));
    }

    /// RFC 2047 §5(1): only the non-ASCII words are encoded; runs share one encoding.
    #[test]
    fn text_encoding() {
        assert_eq!(
            encode_text("Auto: héllo there"),
            "Auto: =?UTF-8?Q?h=C3=A9llo?= there"
        );
        assert_eq!(
            encode_text("été  à Paris"),
            "=?UTF-8?Q?=C3=A9t=C3=A9__=C3=A0?= Paris"
        );
        assert_eq!(encode_text("x  é  y "), "x  =?UTF-8?Q?=C3=A9?=  y ");
        for text in ["a é b", "éé", " lead é", "plain"] {
            assert_eq!(
                decode_value(encode_text(text).as_bytes()),
                text.trim(),
                "{text}"
            );
        }
    }

    #[test]
    fn decoding() {
        assert_eq!(decode_value(b" =?ISO-8859-1?Q?Caf=E9?=\r\n ok"), "Café ok");
        assert_eq!(decode_value(b" a =?UTF-8?B?w6k=?= b"), "a é b");
        assert_eq!(
            decode_value(b" plain  text\r\n\tfolded "),
            "plain  text\tfolded"
        );
    }
}
