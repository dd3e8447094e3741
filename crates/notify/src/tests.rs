use super::*;
use postern_config::{Config, Source};
use std::os::unix::fs::PermissionsExt;

fn mail(account: &str) -> NewMail {
    NewMail {
        account: account.into(),
        mailbox: "INBOX".into(),
        uid: 1,
        size: 100,
        sender: Some("bob@remote.test".into()),
        subject: Some("hi".into()),
        path: None,
    }
}

fn notify_config(toml: &str) -> Notify {
    Config::from_toml(toml, Source::Defaults).unwrap().notify
}

#[test]
fn account_lists() {
    assert!(matches_account(&[], "a@x.test"));
    let list = ["alice@example.org".to_string(), "@example.net".to_string()];
    assert!(matches_account(&list, "Alice@Example.org"));
    assert!(matches_account(&list, "bob@EXAMPLE.net"));
    assert!(!matches_account(&list, "bob@example.org"));
    assert!(!matches_account(&list, "bob@sub.example.net"));
}

#[tokio::test]
async fn nothing_configured_is_no_hub() {
    assert!(Hub::from_config(&notify_config("")).unwrap().is_none());
}

#[test]
fn needs_a_runtime() {
    let n = notify_config("[notify]\ncomsat = true\n");
    assert!(matches!(Hub::from_config(&n), Err(NotifyError::NoRuntime)));
}

/// Events go to the hooks of their account; beyond max_running + queue_size they are dropped
/// (counted, not run); the hub reports idle once the accepted ones are done.
#[tokio::test]
async fn bounded_and_per_account() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let log = dir.path().join("log");
    let program = dir.path().join("hook");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nwhile [ ! -e {gate} ]; do sleep 0.05; done\necho \"$POSTERN_ACCOUNT\" >> {log}\n",
            gate = gate.display(),
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hub = Hub::from_config(&notify_config(&format!(
        "[notify]\nmax_running = 1\nqueue_size = 1\n[[notify.command]]\nprogram = \"{}\"\naccounts = [\"@example.org\"]\n",
        program.display()
    )))
    .unwrap()
    .unwrap();
    assert!(hub.wants_path());
    hub.new_mail(mail("nobody@elsewhere.test"));
    for i in 0..5 {
        hub.new_mail(mail(&format!("u{i}@example.org")));
    }
    assert_eq!(hub.dropped.load(Ordering::Acquire), 3);
    assert!(hub.dropping.load(Ordering::Acquire));
    assert!(!hub.wait_idle(Duration::from_millis(100)).await);
    std::fs::write(&gate, "").unwrap();
    assert!(hub.wait_idle(Duration::from_secs(60)).await);
    let mut ran: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    ran.sort();
    assert_eq!(ran, ["u0@example.org", "u1@example.org"]);
    // Room again: the next event runs, and the burst is over.
    hub.new_mail(mail("u9@example.org"));
    assert!(!hub.dropping.load(Ordering::Acquire));
    assert_eq!(hub.dropped.load(Ordering::Acquire), 0);
    assert!(hub.wait_idle(Duration::from_secs(60)).await);
    assert!(std::fs::read_to_string(&log).unwrap().contains("u9@"));
}

#[tokio::test]
async fn webhook_only_needs_no_path() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("s");
    std::fs::write(&secret, "k").unwrap();
    let hub = Hub::from_config(&notify_config(&format!(
        "[[notify.webhook]]\nurl = \"http://127.0.0.1:9/\"\nsecret_file = \"{}\"\n",
        secret.display()
    )))
    .unwrap()
    .unwrap();
    assert!(!hub.wants_path());
}
