//! Targets of the policy crate's parsers.

/// Access files (`[policy] access_file`, read at start and at each reload): never panics; a
/// file that parses gives at most one rule per line of the input, each with a message free of
/// control characters, and parsing it again gives the same rules.
pub fn access_file(data: &[u8]) {
    use postern_policy::screens::access::parse_file;
    let text = String::from_utf8_lossy(data);
    if let Ok(rules) = parse_file(&text) {
        assert!(rules.len() <= text.lines().count());
        for r in &rules {
            if let Some(m) = &r.message {
                assert!(!m.is_empty() && !m.chars().any(char::is_control), "{r:?}");
            }
        }
        assert_eq!(parse_file(&text), Ok(rules));
    }
}
