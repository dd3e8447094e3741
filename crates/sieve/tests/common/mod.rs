//! A test host and helpers shared by the integration tests.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use postern_sieve::{
    compile, execute, Context, Envelope, Host, IncludeLocation, Limits, Outcome, Script,
};

/// A host with in-memory mailboxes, included scripts and trackers.
#[derive(Default)]
pub(crate) struct TestHost {
    pub(crate) mailboxes: HashSet<String>,
    pub(crate) scripts: HashMap<String, String>,
    pub(crate) seen: HashSet<(String, String)>,
    pub(crate) replied: HashSet<(String, String)>,
}

impl Host for TestHost {
    fn mailbox_exists(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("INBOX") || self.mailboxes.contains(name)
    }

    fn include(&mut self, name: &str, location: IncludeLocation) -> Result<Arc<Script>, String> {
        let key = match location {
            IncludeLocation::Personal => name.to_string(),
            IncludeLocation::Global => format!("global/{name}"),
        };
        let source = self.scripts.get(&key).ok_or("no such script")?;
        compile(source, &Limits::default())
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    fn duplicate_seen(&self, handle: &str, id: &str, _period: u64) -> bool {
        self.seen.contains(&(handle.to_string(), id.to_string()))
    }

    fn vacation_replied(&self, handle: &str, sender: &str, _period: u64) -> bool {
        self.replied
            .contains(&(handle.to_string(), sender.to_string()))
    }
}

/// The context of a run: mail from `sender@example.com` to `me+box@example.org`.
pub(crate) fn context() -> Context {
    Context {
        envelope: Envelope {
            from: "sender@example.com".into(),
            to: "me+box@example.org".into(),
            orig_to: None,
            auth: None,
        },
        recipient_delimiter: Some('+'),
        user_addresses: vec!["me@example.org".into()],
        now: 1_764_750_000,
        zone_offset_minutes: 60,
        limits: Limits::default(),
    }
}

pub(crate) const MESSAGE: &str = "Return-Path: <sender@example.com>\r\n\
Received: from mx.example.com by mail.example.org; Wed, 3 Dec 2025 08:00:00 +0000\r\n\
From: \"Some Sender\" <sender@example.com>\r\n\
To: Me <me@example.org>, other@example.net\r\n\
Cc: boss@example.org\r\n\
Subject: [acme-users] [fwd] version 1.0 is out\r\n\
Date: Wed, 3 Dec 2025 09:30:00 +0100\r\n\
Message-ID: <abc@example.com>\r\n\
X-Spam-Score: 7\r\n\
List-Id: Acme users <acme-users.lists.example.com>\r\n\
\r\n\
Hello there,\r\n\
this is the body, with a MAGIC word.\r\n";

/// Compiles (panicking with the error) and runs `script` on `message`.
pub(crate) fn run_on(script: &str, message: &str, host: &mut TestHost) -> Outcome {
    let script = compile(script, &Limits::default()).unwrap_or_else(|e| panic!("{e}: {script}"));
    execute(&script, message.as_bytes(), &context(), host)
}

/// Runs `script` on [`MESSAGE`] with an empty host.
pub(crate) fn run(script: &str) -> Outcome {
    run_on(script, MESSAGE, &mut TestHost::default())
}

/// The compile error message of `script`.
pub(crate) fn compile_error(script: &str) -> String {
    match compile(script, &Limits::default()) {
        Ok(_) => panic!("compiled: {script}"),
        Err(e) => e.message,
    }
}
