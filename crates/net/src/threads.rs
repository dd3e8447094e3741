//! Session threads: one single-threaded runtime per core, each connection pinned to one.
//!
//! On tokio's work-stealing runtime every readiness event also woke an idle sibling worker that
//! found nothing to steal and went back to sleep: about eight futex calls and a cross-CPU wake
//! per IMAP command, which on a virtual machine cost more than the command itself. A
//! connection's work is sequential anyway, so it gains nothing from stealing; pinning it to one
//! thread keeps its wake-ups local. Blocking work still goes to each runtime's blocking pool.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

pub(crate) struct SessionThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: CancellationToken,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl SessionThreads {
    /// Starts `n` threads (at least one), each running a current-thread runtime.
    pub(crate) fn start(n: usize) -> io::Result<SessionThreads> {
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let (tx, rx) = mpsc::channel();
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("postern-io-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(rt.handle().clone()));
                    rt.block_on(stop.cancelled());
                    // Sessions were waited for by the server; what is left is blocking work.
                    rt.shutdown_timeout(Duration::from_secs(1));
                })?;
            threads.push(thread);
            let handle = rx
                .recv()
                .map_err(|_| io::Error::other("session thread died while starting"))??;
            handles.push(handle);
        }
        Ok(SessionThreads {
            handles,
            next: AtomicUsize::new(0),
            stop,
            threads: Mutex::new(threads),
        })
    }

    /// The runtime for the next connection (round robin: connections are long-lived and alike).
    pub(crate) fn pick(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }
}

impl Drop for SessionThreads {
    fn drop(&mut self) {
        self.stop.cancel();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}
