//! Group commit for directory fsyncs.
//!
//! A rename or unlink is durable once its directory is fsynced. When many sessions enqueue at
//! once, their fsyncs of the same directory would run one after another; instead, a caller whose
//! change happened before a running fsync started waits for the next one, and one fsync covers
//! every change made before it began.

use crate::error::IoContext;
use crate::SpoolError;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

pub(crate) struct DirSync {
    dir: PathBuf,
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// Changes registered so far (a ticket each).
    requested: u64,
    /// Every ticket up to this one is durable.
    synced: u64,
    /// An fsync is running.
    running: bool,
    /// The last fsync failed: the tickets it covered get the error.
    failed_upto: u64,
    error: Option<String>,
}

impl DirSync {
    pub(crate) fn new(dir: PathBuf) -> DirSync {
        DirSync {
            dir,
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        }
    }

    /// Makes every change made to the directory before this call durable.
    pub(crate) fn sync(&self) -> Result<(), SpoolError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.requested += 1;
        let ticket = st.requested;
        loop {
            if st.synced >= ticket {
                return Ok(());
            }
            if st.failed_upto >= ticket {
                let message = st.error.clone().unwrap_or_default();
                return Err(SpoolError::Io {
                    op: "fsync",
                    path: self.dir.clone(),
                    source: std::io::Error::other(message),
                });
            }
            if !st.running {
                // Lead: one fsync for every ticket issued so far.
                st.running = true;
                let covers = st.requested;
                drop(st);
                let r = File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .ctx("fsync", &self.dir);
                st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                st.running = false;
                match &r {
                    Ok(()) => st.synced = st.synced.max(covers),
                    Err(e) => {
                        st.failed_upto = covers;
                        st.error = Some(e.to_string());
                    }
                }
                self.done.notify_all();
                return r;
            }
            st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn concurrent_callers_all_return_after_a_covering_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(DirSync::new(dir.path().to_path_buf()));
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let s = s.clone();
                let p = dir.path().join(format!("f{i}"));
                std::thread::spawn(move || {
                    std::fs::write(p, b"x").unwrap();
                    s.sync().unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let st = s.state.lock().unwrap();
        assert_eq!(st.synced, st.requested, "every ticket is covered");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let s = DirSync::new(PathBuf::from("/nonexistent/postern-spool"));
        assert!(s.sync().is_err());
    }
}
