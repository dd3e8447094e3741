//! Greylisting at RCPT: the first try of a (client network, sender, recipient) triplet is
//! answered `451 4.7.1` (RFC 5321 §4.2.5: a transient failure the sender must retry); a retry
//! after `greylist_delay_secs` and before `greylist_expire_secs` passes, and the triplet then
//! passes at once for [`KEEP_SECS`] after its last use. A client network with
//! `greylist_auto_allow` passed triplets is no longer greylisted.
//!
//! The state is `data_dir/greylist.db` (SQLite, 0600), used from blocking threads and pruned
//! once an hour. The decisions ([`decide`]) take the time as an argument, so that the tests
//! drive them with a fake clock.

use super::{client_net, passed, screened, unix_now};
use async_trait::async_trait;
use postern_config::{Network, Screens};
use postern_mail::EnhancedCode;
use postern_smtp::{Check, Context, Verdict};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How long a passed triplet, and an auto-allowed network, are remembered after their last
/// use: 35 days (monthly senders stay known).
pub const KEEP_SECS: u64 = 35 * 86400;

/// A passed triplet's (or allowed network's) last use is written again only this long after
/// the one recorded, so that known senders cost a read, not a write.
const TOUCH_SECS: i64 = 3600;

/// Seconds between two prunings of the database.
const PRUNE_EVERY: u64 = 3600;

/// The greylisting settings of `[policy]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `greylist_delay_secs`.
    pub delay: u64,
    /// `greylist_expire_secs`.
    pub expire: u64,
    /// `greylist_auto_allow` (0: never).
    pub auto_allow: u32,
}

impl Settings {
    /// The settings of `screens`.
    pub fn of(screens: &Screens) -> Settings {
        Settings {
            delay: screens.greylist_delay_secs,
            expire: screens.greylist_expire_secs,
            auto_allow: screens.greylist_auto_allow,
        }
    }
}

/// What greylisting decided for one triplet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// First seen, expired, or retried too early: try again in this many seconds.
    Wait(u64),
    /// Retried after the delay: passes now and from now on.
    Retried,
    /// Passed before.
    Known,
    /// The client network is allow-listed by its passed triplets.
    NetworkAllowed,
}

/// One triplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triplet {
    /// The client network ([`client_net`]).
    pub net: String,
    /// The envelope sender, lower case (`""` for `<>`).
    pub sender: String,
    /// The recipient, lower case.
    pub recipient: String,
}

fn sql(e: rusqlite::Error) -> String {
    e.to_string()
}

/// Creates the tables if needed.
pub fn init(conn: &Connection) -> Result<(), String> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS triplet (
             net TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL,
             first INTEGER NOT NULL, last INTEGER NOT NULL, passed INTEGER NOT NULL,
             PRIMARY KEY (net, sender, recipient)) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS network (
             net TEXT PRIMARY KEY NOT NULL, passes INTEGER NOT NULL, last INTEGER NOT NULL
         ) WITHOUT ROWID;",
    )
    .map_err(sql)
}

/// The decision for `t` at `now` (seconds), recorded in `conn`.
pub fn decide(
    conn: &mut Connection,
    t: &Triplet,
    now: u64,
    s: Settings,
) -> Result<Decision, String> {
    let now_i = now as i64;
    let tx = conn.transaction().map_err(sql)?;
    let network: Option<(i64, i64)> = tx
        .query_row(
            "SELECT passes, last FROM network WHERE net = ?1",
            params![t.net],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql)?;
    if let Some((passes, last)) = network {
        let fresh = now_i.saturating_sub(last) <= KEEP_SECS as i64;
        if s.auto_allow > 0 && passes >= i64::from(s.auto_allow) && fresh {
            if now_i.saturating_sub(last) >= TOUCH_SECS {
                tx.execute(
                    "UPDATE network SET last = ?2 WHERE net = ?1",
                    params![t.net, now_i],
                )
                .map_err(sql)?;
            }
            tx.commit().map_err(sql)?;
            return Ok(Decision::NetworkAllowed);
        }
    }
    let row: Option<(i64, i64, bool)> = tx
        .query_row(
            "SELECT first, last, passed FROM triplet WHERE net = ?1 AND sender = ?2 AND recipient = ?3",
            params![t.net, t.sender, t.recipient],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(sql)?;
    let restart = |tx: &rusqlite::Transaction| {
        tx.execute(
            "INSERT OR REPLACE INTO triplet (net, sender, recipient, first, last, passed)
             VALUES (?1, ?2, ?3, ?4, ?4, 0)",
            params![t.net, t.sender, t.recipient, now_i],
        )
        .map_err(sql)
    };
    let decision = match row {
        None => {
            restart(&tx)?;
            Decision::Wait(s.delay)
        }
        Some((_, last, true)) if now_i.saturating_sub(last) <= KEEP_SECS as i64 => {
            // `last` only matters to the day: most uses write nothing.
            if now_i.saturating_sub(last) >= TOUCH_SECS {
                tx.execute(
                    "UPDATE triplet SET last = ?4 WHERE net = ?1 AND sender = ?2 AND recipient = ?3",
                    params![t.net, t.sender, t.recipient, now_i],
                )
                .map_err(sql)?;
            }
            Decision::Known
        }
        Some((_, _, true)) => {
            restart(&tx)?;
            Decision::Wait(s.delay)
        }
        Some((first, _, false)) => {
            let age = now_i.saturating_sub(first).max(0) as u64;
            if age > s.expire {
                restart(&tx)?;
                Decision::Wait(s.delay)
            } else if age < s.delay {
                Decision::Wait(s.delay - age)
            } else {
                tx.execute(
                    "UPDATE triplet SET last = ?4, passed = 1 WHERE net = ?1 AND sender = ?2 AND recipient = ?3",
                    params![t.net, t.sender, t.recipient, now_i],
                )
                .map_err(sql)?;
                tx.execute(
                    "INSERT INTO network (net, passes, last) VALUES (?1, 1, ?2)
                     ON CONFLICT (net) DO UPDATE SET passes = passes + 1, last = ?2",
                    params![t.net, now_i],
                )
                .map_err(sql)?;
                Decision::Retried
            }
        }
    };
    tx.commit().map_err(sql)?;
    Ok(decision)
}

/// Forgets triplets never retried within `expire`, and passed triplets and networks unused for
/// [`KEEP_SECS`]. Returns the rows removed.
pub fn prune(conn: &Connection, now: u64, s: Settings) -> Result<usize, String> {
    let now = now as i64;
    let keep = now - KEEP_SECS as i64;
    let a = conn
        .execute(
            "DELETE FROM triplet WHERE (passed = 0 AND first < ?1) OR (passed = 1 AND last < ?2)",
            params![now - s.expire as i64, keep],
        )
        .map_err(sql)?;
    let b = conn
        .execute("DELETE FROM network WHERE last < ?1", params![keep])
        .map_err(sql)?;
    Ok(a + b)
}

/// The open greylist database.
pub struct GreylistDb {
    conn: Mutex<Connection>,
    last_prune: Mutex<u64>,
}

impl GreylistDb {
    /// Opens (creating, mode 0600) the database at `path`.
    pub fn open(path: &Path) -> Result<GreylistDb, String> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("cannot create it: {e}"))?;
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        // Greylisting state needs no fsync: after a crash, a lost triplet is only greylisted
        // again. WAL without syncs keeps each decision off the disk's flush path.
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
            .map_err(sql)?;
        init(&conn)?;
        Ok(GreylistDb {
            conn: Mutex::new(conn),
            last_prune: Mutex::new(0),
        })
    }

    /// [`decide`] now, pruning first when due. Blocking: call it off the runtime threads.
    pub fn decide_now(&self, t: &Triplet, s: Settings) -> Result<Decision, String> {
        let now = unix_now();
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut last = self.last_prune.lock().unwrap_or_else(|e| e.into_inner());
            if now.saturating_sub(*last) >= PRUNE_EVERY {
                *last = now;
                match prune(&conn, now, s) {
                    Ok(n) if n > 0 => tracing::debug!(removed = n, "greylist pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("greylist pruning failed: {e}"),
                }
            }
        }
        decide(&mut conn, t, now, s)
    }
}

/// Greylisting as a check.
pub struct GreylistCheck {
    db: Arc<GreylistDb>,
    settings: Settings,
    trusted: Vec<Network>,
}

impl GreylistCheck {
    /// Greylisting with `db`.
    pub fn new(db: Arc<GreylistDb>, settings: Settings, trusted: Vec<Network>) -> GreylistCheck {
        GreylistCheck {
            db,
            settings,
            trusted,
        }
    }
}

#[async_trait]
impl Check for GreylistCheck {
    fn name(&self) -> &str {
        "greylist"
    }

    /// RFC 5321 §4.2.5 and §4.5.4.1: a `451` the sender's queue retries.
    async fn rcpt(&self, ctx: &Context, recipient: &str) -> Verdict {
        if !screened(ctx, &self.trusted) || passed(ctx, Some(recipient)) {
            return Verdict::Accept;
        }
        let triplet = Triplet {
            net: client_net(ctx.peer),
            sender: ctx.sender.clone().unwrap_or_default().to_ascii_lowercase(),
            recipient: recipient.to_ascii_lowercase(),
        };
        let db = self.db.clone();
        let settings = self.settings;
        let decided = tokio::task::spawn_blocking(move || {
            let d = db.decide_now(&triplet, settings);
            (triplet, d)
        })
        .await;
        match decided {
            Ok((_, Ok(Decision::Wait(secs)))) => Verdict::tempfail(
                451,
                EnhancedCode::new(4, 7, 1),
                &format!("Greylisted, please try again in {secs} seconds"),
            ),
            Ok((t, Ok(d))) => {
                if d == Decision::Retried {
                    tracing::info!(net = %t.net, sender = %t.sender, rcpt = %t.recipient, "greylisting passed a retry");
                }
                Verdict::Accept
            }
            Ok((_, Err(e))) => {
                // A broken database must not stop mail: greylisting is a delay, not a filter.
                tracing::error!("greylist database: {e}; the recipient passes");
                Verdict::Accept
            }
            Err(e) => {
                tracing::error!("greylist lookup: {e}; the recipient passes");
                Verdict::Accept
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triplet(net: &str, rcpt: &str) -> Triplet {
        Triplet {
            net: net.into(),
            sender: "alice@sender.test".into(),
            recipient: rcpt.into(),
        }
    }

    #[test]
    fn triplets_wait_pass_and_expire() {
        let mut c = Connection::open_in_memory().unwrap();
        init(&c).unwrap();
        let s = Settings {
            delay: 300,
            expire: 3600,
            auto_allow: 0,
        };
        let t = triplet("192.0.2.0/24", "bob@example.org");
        let t0 = 1_000_000;
        assert_eq!(decide(&mut c, &t, t0, s).unwrap(), Decision::Wait(300));
        // Too early: the remaining time, and the first try is not moved.
        assert_eq!(
            decide(&mut c, &t, t0 + 100, s).unwrap(),
            Decision::Wait(200)
        );
        assert_eq!(decide(&mut c, &t, t0 + 299, s).unwrap(), Decision::Wait(1));
        assert_eq!(decide(&mut c, &t, t0 + 300, s).unwrap(), Decision::Retried);
        assert_eq!(decide(&mut c, &t, t0 + 301, s).unwrap(), Decision::Known);
        // Another recipient is another triplet.
        let u = triplet("192.0.2.0/24", "carol@example.org");
        assert_eq!(
            decide(&mut c, &u, t0 + 400, s).unwrap(),
            Decision::Wait(300)
        );
        // Never retried within expire: starts over.
        assert_eq!(
            decide(&mut c, &u, t0 + 400 + 3601, s).unwrap(),
            Decision::Wait(300)
        );
        // A passed triplet unused for KEEP_SECS is forgotten.
        let later = t0 + 301 + KEEP_SECS + 1;
        assert_eq!(decide(&mut c, &t, later, s).unwrap(), Decision::Wait(300));
    }

    #[test]
    fn networks_are_allowed_after_passes_and_pruned() {
        let mut c = Connection::open_in_memory().unwrap();
        init(&c).unwrap();
        let s = Settings {
            delay: 60,
            expire: 600,
            auto_allow: 2,
        };
        let t0 = 5_000_000;
        for (i, rcpt) in ["a@x.test", "b@x.test"].iter().enumerate() {
            let t = triplet("198.51.100.0/24", rcpt);
            let at = t0 + i as u64 * 1000;
            assert!(matches!(
                decide(&mut c, &t, at, s).unwrap(),
                Decision::Wait(_)
            ));
            assert_eq!(decide(&mut c, &t, at + 60, s).unwrap(), Decision::Retried);
        }
        // Two passed triplets: the network passes with a new triplet at once.
        let new = triplet("198.51.100.0/24", "new@x.test");
        assert_eq!(
            decide(&mut c, &new, t0 + 2000, s).unwrap(),
            Decision::NetworkAllowed
        );
        // Another network does not.
        let other = triplet("203.0.113.0/24", "new@x.test");
        assert_eq!(
            decide(&mut c, &other, t0 + 2000, s).unwrap(),
            Decision::Wait(60)
        );
        // Pruning: the unretried triplet after expire, the rest after KEEP_SECS.
        assert_eq!(prune(&c, t0 + 2000 + 601, s).unwrap(), 1);
        assert_eq!(prune(&c, t0 + 2000 + KEEP_SECS + 1, s).unwrap(), 3);
        assert_eq!(
            decide(&mut c, &new, t0 + 2000 + KEEP_SECS + 2, s).unwrap(),
            Decision::Wait(60)
        );
    }

    #[test]
    fn the_database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("greylist.db");
        let db = GreylistDb::open(&path).unwrap();
        let s = Settings {
            delay: 300,
            expire: 3600,
            auto_allow: 5,
        };
        let t = triplet("192.0.2.0/24", "bob@example.org");
        assert_eq!(db.decide_now(&t, s).unwrap(), Decision::Wait(300));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(db);
        // Reopened, it remembers.
        let db = GreylistDb::open(&path).unwrap();
        assert!(matches!(db.decide_now(&t, s).unwrap(), Decision::Wait(n) if n <= 300));
    }
}
