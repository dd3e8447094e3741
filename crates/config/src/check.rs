//! Value checks shared by every section's validation: one place, so that `[smtp]`, `[queue]` and
//! `[relay]` refuse the same bad value with the same words. Nothing here knows a section.

use crate::ConfigError;

/// `value`, or `default` when unset; zero is refused (a limit of zero would switch a service off
/// by accident).
pub(crate) fn positive<T: PartialEq + Default + Copy>(
    key: &str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        Some(v) if v == T::default() => Err(ConfigError::invalid(format!(
            "{key}: must be greater than zero"
        ))),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

/// `value`, or `default` when unset; below `minimum` is refused with the rule that sets it.
pub(crate) fn at_least(
    key: &str,
    value: Option<u64>,
    default: u64,
    minimum: u64,
    rule: &str,
) -> Result<u64, ConfigError> {
    match value {
        Some(v) if v < minimum => Err(ConfigError::invalid(format!(
            "{key}: {v} is below the {minimum} that {rule} requires"
        ))),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

/// A DNS host name (RFC 1123 §2.1): labels of letters, digits and inner hyphens.
pub(crate) fn hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Splits `host:port` (a `[v6]:port` literal too) with a non-zero port.
pub(crate) fn host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => rest.split_once("]:")?,
        None => s.rsplit_once(':')?,
    };
    let port = port.parse::<u16>().ok().filter(|&p| p > 0)?;
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| (host.to_string(), port))
}

/// A domain name (IDN labels allowed as UTF-8).
pub(crate) fn domain_ok(d: &str) -> bool {
    !d.is_empty()
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80)
        })
}

/// A list of domain names, lower-cased and without a trailing dot.
pub(crate) fn domains(key: &str, list: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (i, d) in list.unwrap_or_default().into_iter().enumerate() {
        let d = d.trim().trim_end_matches('.').to_lowercase();
        if !domain_ok(&d) {
            return Err(ConfigError::invalid(format!(
                "{key}[{i}]: {d:?} is not a domain name"
            )));
        }
        out.push(d);
    }
    Ok(out)
}
