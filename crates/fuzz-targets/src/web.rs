//! Targets of the HTTPS listener's parsers (crates/web).

/// The request target and an Autodiscover body: input = target bytes, NUL, body bytes. Never
/// panics; a path that decodes starts with `/` and has no `.`/`..`/empty segment, backslash or
/// control character (no traversal however encoded); decoded query pairs are UTF-8 by type; an
/// Autodiscover address is non-empty and trimmed.
pub fn web_request(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (target, body) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let target = String::from_utf8_lossy(target);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (&*target, None),
    };
    if let Ok(p) = postern_web::decode_path(path) {
        assert!(p.starts_with('/'), "{p:?}");
        let segments: Vec<&str> = p[1..].split('/').collect();
        for (i, s) in segments.iter().enumerate() {
            assert!(*s != "." && *s != "..", "{p:?}");
            assert!(!s.is_empty() || i == segments.len() - 1, "{p:?}");
        }
        assert!(!p.chars().any(|c| c == '\\' || c.is_control()), "{p:?}");
    }
    if let Ok(pairs) = postern_web::decode_query(query) {
        assert!(pairs.len() <= query.map_or(0, |q| q.split('&').count()));
    }
    if let Ok(address) = postern_web::autodiscover_address(body) {
        assert!(
            !address.is_empty() && address.trim() == address,
            "{address:?}"
        );
    }
}
