use super::*;
use crate::{BodyType, Envelope, Notify, Recipient, Spool};
use std::sync::Mutex;

/// A transport that answers from a script per address and records every call.
struct Scripted {
    script: Mutex<Vec<(String, Outcome)>>,
    calls: Mutex<Vec<(String, Vec<String>)>>,
}

impl Scripted {
    fn new(script: &[(&str, Outcome)]) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Mutex::new(
                script
                    .iter()
                    .map(|(a, o)| (a.to_string(), o.clone()))
                    .collect(),
            ),
            calls: Mutex::new(Vec::new()),
        })
    }
    fn calls(&self) -> Vec<(String, Vec<String>)> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Transport for Scripted {
    async fn deliver(&self, entry: &QueueEntry, _m: Arc<[u8]>, indices: &[usize]) -> Vec<Outcome> {
        let mut out = Vec::new();
        for &i in indices {
            let addr = entry.recipients[i].recipient.address.clone();
            self.calls.lock().unwrap().push((
                addr.clone(),
                entry.delivered_accounts.iter().cloned().collect(),
            ));
            let mut script = self.script.lock().unwrap();
            // The first scripted answer for this address is used once; the default is success.
            let pos = script.iter().position(|(a, _)| *a == addr);
            out.push(match pos {
                Some(p) => script.remove(p).1,
                None => Outcome::Delivered {
                    note: postern_mail::Status::with_text(
                        postern_mail::EnhancedCode::SUCCESS,
                        "ok",
                    ),
                    accounts: vec![addr.clone()],
                    forward: vec![],
                },
            });
        }
        out
    }
}

fn envelope(rcpts: &[&str]) -> Envelope {
    Envelope {
        sender: Some("s@example.net".into()),
        recipients: rcpts.iter().map(|r| Recipient::new(*r)).collect(),
        ret: None,
        envid: None,
        body: BodyType::SevenBit,
        smtputf8: false,
        requiretls: false,
        authenticated: None,
        client_ip: None,
        helo: None,
    }
}

fn fast() -> RunnerSettings {
    RunnerSettings {
        schedule: RetrySchedule {
            delays: vec![Duration::from_secs(1)],
            give_up_after: Duration::from_secs(3600),
        },
        concurrency: 4,
        rescan_interval: Duration::from_millis(200),
        wake_poll: Duration::from_millis(50),
        dsn: DsnSettings {
            reporting_mta: "mx.example.net".into(),
            delay_warning: None,
        },
    }
}

/// Runs the queue until `done` holds (or 10 s pass), then stops it.
async fn run_until(
    spool: &Arc<Spool>,
    transport: Arc<Scripted>,
    settings: RunnerSettings,
    done: impl Fn(&Spool) -> bool,
) {
    let stop = CancellationToken::new();
    let runner = QueueRunner::new(spool.clone(), transport, settings);
    let task = tokio::spawn(runner.run(stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(spool) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue did not settle"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn delivered_messages_leave_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path()).unwrap());
    let t = Scripted::new(&[]);
    spool
        .enqueue(&envelope(&["a@x.test", "b@x.test"]), b"m")
        .unwrap();
    run_until(&spool, t.clone(), fast(), |s| s.ids().unwrap().is_empty()).await;
    assert_eq!(t.calls().len(), 2);
}

/// A transport that also keeps the messages it was given.
fn bounce_of(t: &Scripted) -> Vec<String> {
    t.calls().into_iter().map(|(a, _)| a).collect()
}

#[tokio::test]
async fn deferred_recipients_are_retried_and_failures_bounced() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path()).unwrap());
    let t = Scripted::new(&[
        ("a@x.test", Outcome::Deferred(temp("451 try later"))),
        ("b@x.test", Outcome::Failed(perm("550 5.1.1 no such user"))),
    ]);
    let id = spool
        .enqueue(
            &envelope(&["a@x.test", "b@x.test"]),
            b"Subject: t\r\n\r\nm\r\n",
        )
        .unwrap();
    run_until(&spool, t.clone(), fast(), |s| s.ids().unwrap().is_empty()).await;
    let calls = bounce_of(&t);
    // a: deferred once then delivered; b: tried once, failed; then the bounce to the sender.
    assert_eq!(calls.iter().filter(|a| *a == "a@x.test").count(), 2);
    assert_eq!(calls.iter().filter(|a| *a == "b@x.test").count(), 1);
    assert_eq!(
        calls.iter().filter(|a| *a == "s@example.net").count(),
        1,
        "{calls:?}"
    );
    assert!(matches!(
        spool.entry(&id),
        Err(crate::SpoolError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_null_sender_failure_makes_no_bounce_and_a_bounce_never_bounces() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path()).unwrap());
    let t = Scripted::new(&[
        ("b@x.test", Outcome::Failed(perm("550 5.1.1 no such user"))),
        (
            "s@example.net",
            Outcome::Failed(perm("550 5.1.1 sender gone too")),
        ),
    ]);
    let mut env = envelope(&["b@x.test"]);
    env.sender = None;
    spool.enqueue(&env, b"m").unwrap();
    // A normal message whose bounce fails too: that bounce (null sender) makes nothing more.
    spool.enqueue(&envelope(&["b@x.test"]), b"m").unwrap();
    t.script
        .lock()
        .unwrap()
        .push(("b@x.test".into(), Outcome::Failed(perm("550 5.1.1 again"))));
    run_until(&spool, t.clone(), fast(), |s| s.ids().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = bounce_of(&t);
    assert_eq!(
        calls.iter().filter(|a| *a == "s@example.net").count(),
        1,
        "{calls:?}"
    );
    assert!(spool.ids().unwrap().is_empty());
}

#[tokio::test]
async fn delay_warning_once_then_success_notice() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path()).unwrap());
    let t = Scripted::new(&[
        ("a@x.test", Outcome::Deferred(temp("451 4.3.0 try later"))),
        ("a@x.test", Outcome::Deferred(temp("451 4.3.0 try later"))),
    ]);
    let mut env = envelope(&["a@x.test"]);
    env.recipients[0].notify = Notify {
        success: true,
        failure: true,
        delay: true,
    };
    spool.enqueue(&env, b"m").unwrap();
    let mut settings = fast();
    settings.dsn.delay_warning = Some(Duration::ZERO);
    run_until(&spool, t.clone(), settings, |s| s.ids().unwrap().is_empty()).await;
    let calls = bounce_of(&t);
    // One delay warning (not one per retry), then one success notice.
    assert_eq!(
        calls.iter().filter(|a| *a == "a@x.test").count(),
        3,
        "{calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|a| *a == "s@example.net").count(),
        2,
        "{calls:?}"
    );
}

#[tokio::test]
async fn held_messages_wait_until_released_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path()).unwrap());
    let t = Scripted::new(&[("a@x.test", Outcome::Deferred(temp("451 later")))]);
    let id = spool.enqueue(&envelope(&["a@x.test"]), b"m").unwrap();
    let (stop, task, deadline) = start_slow_runner(&spool, &t).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The admin (another process) holds it, then flushes: a held message stays put.
    let admin = Spool::open(dir.path()).unwrap();
    // Busy until the runner has recorded its first attempt (the message leaves the journal).
    loop {
        match admin.hold(&id) {
            Err(crate::SpoolError::Busy(_)) => {
                assert!(tokio::time::Instant::now() < deadline);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            r => break assert!(r.unwrap().held),
        }
    }
    assert_eq!(admin.flush().unwrap(), 0);
    admin.request_wake().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.calls().len(), 1);
    // Release makes it due now, and the wake-up file makes the runner notice at once.
    admin.release(&id).unwrap();
    admin.request_wake().unwrap();
    while !spool.ids().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "release was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    task.await.unwrap();
    assert_eq!(t.calls().len(), 2);
}

#[tokio::test]
async fn giving_up_turns_deferral_into_failure() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path()).unwrap());
    let t = Scripted::new(&[("a@x.test", Outcome::Deferred(temp("connection refused")))]);
    let id = spool.enqueue(&envelope(&["a@x.test"]), b"m").unwrap();
    let mut settings = fast();
    settings.schedule.give_up_after = Duration::ZERO;
    run_until(&spool, t.clone(), settings, |s| s.ids().unwrap().is_empty()).await;
    // Given up at the first deferral, bounced, and gone.
    assert_eq!(bounce_of(&t), ["a@x.test", "s@example.net"]);
    assert!(spool.entry(&id).is_err());
}

#[tokio::test]
async fn alias_forwards_join_the_message_and_duplicates_are_visible() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path()).unwrap());
    let t = Scripted::new(&[(
        "list@x.test",
        Outcome::Delivered {
            note: postern_mail::Status::with_text(postern_mail::EnhancedCode::SUCCESS, "expanded"),
            accounts: vec!["alice@x.test".into()],
            forward: vec!["far@remote.test".into()],
        },
    )]);
    spool
        .enqueue(&envelope(&["list@x.test", "alice@x.test"]), b"m")
        .unwrap();
    run_until(&spool, t.clone(), fast(), |s| s.ids().unwrap().is_empty()).await;
    let calls = t.calls();
    assert!(
        calls.iter().any(|(a, _)| a == "far@remote.test"),
        "{calls:?}"
    );
    // Recipients of one pass see what earlier passes delivered.
    let (_, seen) = calls.iter().find(|(a, _)| a == "far@remote.test").unwrap();
    assert!(seen.contains(&"alice@x.test".to_string()));
}

#[tokio::test]
async fn messages_queued_before_start_or_by_another_process_are_found() {
    let dir = tempfile::tempdir().unwrap();
    // Queued by a previous server that stopped (in its journal, so recovered at start).
    let before = Spool::open(dir.path()).unwrap();
    before.enqueue(&envelope(&["early@x.test"]), b"m").unwrap();
    drop(before);
    let spool = Arc::new(Spool::open(dir.path()).unwrap());
    // "Another process": a second Spool handle on the same directory (it does not own the
    // journal, so it writes a classic file the runner finds when it re-reads the spool).
    let other = Spool::open(dir.path()).unwrap();
    let t = Scripted::new(&[]);
    let stop = CancellationToken::new();
    let task = tokio::spawn(QueueRunner::new(spool.clone(), t.clone(), fast()).run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    other.enqueue(&envelope(&["late@x.test"]), b"m").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !spool.ids().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "not picked up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    task.await.unwrap();
    let calls: Vec<String> = t.calls().into_iter().map(|(a, _)| a).collect();
    assert!(calls.contains(&"early@x.test".into()) && calls.contains(&"late@x.test".into()));
}

/// Starts a runner that retries hourly and rescans hourly, and waits for its first attempt.
/// Returns its stop token, its task and a deadline 10 s out.
async fn start_slow_runner(
    spool: &Arc<Spool>,
    t: &Arc<Scripted>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<()>,
    tokio::time::Instant,
) {
    let mut settings = fast();
    settings.schedule.delays = vec![Duration::from_secs(3600)];
    settings.rescan_interval = Duration::from_secs(3600);
    let stop = CancellationToken::new();
    let task = tokio::spawn(QueueRunner::new(spool.clone(), t.clone(), settings).run(stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while t.calls().is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (stop, task, deadline)
}

/// Waits until the runner has recorded an attempt for `id` (the admin's change is refused as
/// Busy while the first attempt owns the message), then applies `change`.
async fn admin_change(
    admin: &Spool,
    deadline: tokio::time::Instant,
    mut change: impl FnMut(&Spool) -> Result<QueueEntry, crate::SpoolError>,
) -> QueueEntry {
    loop {
        match change(admin) {
            Err(crate::SpoolError::Busy(_)) => {
                assert!(tokio::time::Instant::now() < deadline);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            r => return r.unwrap(),
        }
    }
}

#[tokio::test]
async fn an_admin_retry_that_fails_keeps_the_planned_back_off() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path()).unwrap());
    let t = Scripted::new(&[
        ("a@x.test", Outcome::Deferred(temp("451 later"))),
        ("a@x.test", Outcome::Deferred(temp("451 still later"))),
    ]);
    let id = spool.enqueue(&envelope(&["a@x.test"]), b"m").unwrap();
    let mut settings = fast();
    settings.schedule.delays = vec![Duration::from_secs(600), Duration::from_secs(6000)];
    settings.rescan_interval = Duration::from_secs(3600);
    let stop = CancellationToken::new();
    let task = tokio::spawn(QueueRunner::new(spool.clone(), t.clone(), settings).run(stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let admin = Spool::open(dir.path()).unwrap();
    // After the first deferral the next attempt is planned 600 s out.
    let first = loop {
        let e = admin_change(&admin, deadline, |s| s.entry(&id)).await;
        if e.recipients[0].attempts == 1 {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let planned = first.recipients[0].next_attempt;
    admin_change(&admin, deadline, |s| s.retry(&id)).await;
    admin.request_wake().unwrap();
    while t.calls().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "retry not noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = loop {
        let e = admin.entry(&id).unwrap();
        if e.recipients[0].last_error.as_ref().map(|s| s.text.as_str()) == Some("451 still later") {
            break e;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.cancel();
    task.await.unwrap();
    // Not 6000 s out: the early attempt did not count as a step of the back-off.
    assert_eq!(after.recipients[0].next_attempt, planned);
    assert_eq!(after.recipients[0].attempts, 1);
    assert_eq!(after.recipients[0].scheduled, None);
}

#[tokio::test]
async fn an_admin_bounce_returns_the_message_now() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path()).unwrap());
    let t = Scripted::new(&[("a@x.test", Outcome::Deferred(temp("451 later")))]);
    let id = spool
        .enqueue(&envelope(&["a@x.test"]), b"Subject: t\r\n\r\nm\r\n")
        .unwrap();
    let (stop, task, deadline) = start_slow_runner(&spool, &t).await;
    let admin = Spool::open(dir.path()).unwrap();
    let e = admin_change(&admin, deadline, |s| s.bounce(&id, &perm("5.3.0 returned"))).await;
    assert!(!e.recipients[0].is_pending());
    admin.request_wake().unwrap();
    while !bounce_of(&t).contains(&"s@example.net".to_string()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notice to the sender"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    task.await.unwrap();
    // Tried once, then no more attempts: the notice went to the sender instead.
    assert_eq!(bounce_of(&t), ["a@x.test", "s@example.net"]);
    assert!(spool.entry(&id).is_err());
}

/// A temporary status from a reply text (its code, or 4.0.0).
fn temp(text: &str) -> postern_mail::Status {
    postern_mail::Status::from_text(text, postern_mail::EnhancedCode::TEMPORARY)
}

/// A permanent status from a reply text (its code, or 5.0.0).
fn perm(text: &str) -> postern_mail::Status {
    postern_mail::Status::from_text(text, postern_mail::EnhancedCode::PERMANENT)
}
