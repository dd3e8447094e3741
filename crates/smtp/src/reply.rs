//! Reply formatting (RFC 5321 §4.2): every 2xx/4xx/5xx reply carries an enhanced status code
//! (RFC 2034 §4, RFC 3463).

/// `code status text` + CRLF; `status` may be empty (greeting, HELO, EHLO first line).
pub(crate) fn line(code: u16, status: &str, text: &str) -> String {
    if status.is_empty() {
        format!("{code} {text}\r\n")
    } else {
        format!("{code} {status} {text}\r\n")
    }
}

/// A multi-line reply without enhanced codes (EHLO, RFC 5321 §4.2.1).
pub(crate) fn multiline(code: u16, lines: &[String]) -> String {
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.push_str(&format!("{code}{sep}{l}\r\n"));
    }
    out
}

/// A multi-line reply with the enhanced code on every line (RFC 2034 §4).
pub(crate) fn multiline_enhanced(code: u16, status: &str, lines: &[String]) -> String {
    let with: Vec<String> = lines.iter().map(|l| format!("{status} {l}")).collect();
    multiline(code, &with)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::line(250, "2.0.0", "Ok"), "250 2.0.0 Ok\r\n");
        assert_eq!(super::line(220, "", "mx ESMTP"), "220 mx ESMTP\r\n");
        assert_eq!(
            super::multiline(250, &["a".into(), "b".into()]),
            "250-a\r\n250 b\r\n"
        );
        assert_eq!(
            super::multiline_enhanced(250, "2.1.5", &["<a@b>".into()]),
            "250 2.1.5 <a@b>\r\n"
        );
    }
}
