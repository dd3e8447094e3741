//! [`FetchOptions`] as the JSON of the `accounts.options` column. Every field has a default,
//! so a row written by an older postern (fewer fields) still reads, and unknown fields (a
//! newer postern) are ignored.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

use crate::account::{EnvelopeRule, FetchOptions, Folders};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredFolders {
    Inbox,
    All,
    Named(Vec<String>),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredEnvelope {
    Owner,
    Multidrop(Vec<String>),
}

#[derive(Serialize, Deserialize)]
#[serde(default)]
struct StoredOptions {
    keep: bool,
    only_unseen: bool,
    mark_seen: bool,
    size_limit: Option<u64>,
    rate_limit: Option<u32>,
    folders: StoredFolders,
    envelope: StoredEnvelope,
    interval_ms: u64,
    idle: bool,
    apop: bool,
    allow_plaintext: bool,
    ca_file: Option<String>,
}

impl Default for StoredOptions {
    fn default() -> StoredOptions {
        from_options(&FetchOptions::default()).expect("the defaults have no CA file")
    }
}

fn from_options(o: &FetchOptions) -> Result<StoredOptions, String> {
    Ok(StoredOptions {
        keep: o.keep,
        only_unseen: o.only_unseen,
        mark_seen: o.mark_seen,
        size_limit: o.size_limit,
        rate_limit: o.rate_limit,
        folders: match &o.folders {
            Folders::Inbox => StoredFolders::Inbox,
            Folders::All => StoredFolders::All,
            Folders::Named(names) => StoredFolders::Named(names.clone()),
        },
        envelope: match &o.envelope {
            EnvelopeRule::Owner => StoredEnvelope::Owner,
            EnvelopeRule::Multidrop { headers } => StoredEnvelope::Multidrop(headers.clone()),
        },
        interval_ms: u64::try_from(o.interval.as_millis()).unwrap_or(u64::MAX),
        idle: o.idle,
        apop: o.apop,
        allow_plaintext: o.allow_plaintext,
        ca_file: match &o.ca_file {
            None => None,
            Some(p) => Some(
                p.to_str()
                    .ok_or_else(|| format!("the CA file path {} is not UTF-8", p.display()))?
                    .to_string(),
            ),
        },
    })
}

/// The JSON of `options`.
pub(super) fn encode(options: &FetchOptions) -> Result<String, String> {
    serde_json::to_string(&from_options(options)?).map_err(|e| e.to_string())
}

/// The options of a JSON [`encode`] wrote.
pub(super) fn decode(json: &str) -> Result<FetchOptions, String> {
    let s: StoredOptions = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(FetchOptions {
        keep: s.keep,
        only_unseen: s.only_unseen,
        mark_seen: s.mark_seen,
        size_limit: s.size_limit,
        rate_limit: s.rate_limit,
        folders: match s.folders {
            StoredFolders::Inbox => Folders::Inbox,
            StoredFolders::All => Folders::All,
            StoredFolders::Named(names) => Folders::Named(names),
        },
        envelope: match s.envelope {
            StoredEnvelope::Owner => EnvelopeRule::Owner,
            StoredEnvelope::Multidrop(headers) => EnvelopeRule::Multidrop { headers },
        },
        interval: Duration::from_millis(s.interval_ms),
        idle: s.idle,
        apop: s.apop,
        allow_plaintext: s.allow_plaintext,
        ca_file: s.ca_file.map(PathBuf::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_option() {
        let defaults = FetchOptions::default();
        assert_eq!(decode(&encode(&defaults).unwrap()).unwrap(), defaults);
        let all = FetchOptions {
            keep: false,
            only_unseen: true,
            mark_seen: true,
            size_limit: Some(10_000_000),
            rate_limit: Some(60),
            folders: Folders::Named(vec!["INBOX".into(), "Lists/rust".into()]),
            envelope: EnvelopeRule::default_multidrop(),
            interval: Duration::from_secs(90),
            idle: false,
            apop: false,
            allow_plaintext: true,
            ca_file: Some("/etc/ssl/private-ca.pem".into()),
        };
        assert_eq!(decode(&encode(&all).unwrap()).unwrap(), all);
        let every = FetchOptions {
            folders: Folders::All,
            ..defaults.clone()
        };
        assert_eq!(decode(&encode(&every).unwrap()).unwrap(), every);
    }

    #[test]
    fn missing_fields_take_defaults_and_unknown_ones_are_ignored() {
        let o = decode(r#"{"keep": false, "from_the_future": 1}"#).unwrap();
        assert_eq!(
            o,
            FetchOptions {
                keep: false,
                ..FetchOptions::default()
            }
        );
        assert!(decode(r#"{"keep": "yes"}"#).is_err());
        assert!(decode("not json").is_err());
    }
}
