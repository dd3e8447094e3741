//! Scratch: runs a script on a message and prints the outcome (not committed).
use postern_sieve::*;
use std::sync::Arc;
struct H;
impl Host for H {
    fn mailbox_exists(&self, _: &str) -> bool {
        true
    }
    fn include(&mut self, n: &str, _: IncludeLocation) -> Result<Arc<Script>, String> {
        let src = std::fs::read_to_string(format!("/tmp/pig/corpus/scripts/{n}.sieve"))
            .map_err(|e| e.to_string())?;
        compile(&src, &Limits::default())
            .map(Arc::new)
            .map_err(|e| e.message)
    }
    fn duplicate_seen(&self, _: &str, _: &str, _: u64) -> bool {
        false
    }
    fn vacation_replied(&self, _: &str, _: &str, _: u64) -> bool {
        false
    }
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let src = std::fs::read_to_string(&a[1]).unwrap();
    let msg = std::fs::read(&a[2]).unwrap();
    let s = match compile(&src, &Limits::default()) {
        Ok(s) => s,
        Err(e) => {
            println!("COMPILE ERROR line {}: {}", e.line, e.message);
            return;
        }
    };
    let ctx = Context {
        envelope: Envelope {
            from: "sender@example.com".into(),
            to: std::env::var("RCPT").unwrap_or("user@example.net".into()),
            orig_to: None,
            auth: None,
        },
        recipient_delimiter: Some('+'),
        user_addresses: vec![],
        now: 1764750000,
        zone_offset_minutes: 0,
        limits: Limits::default(),
    };
    let o = execute(&s, &msg, &ctx, &mut H);
    for a in &o.actions {
        println!("{:?}", a);
    }
    println!(
        "implicit_keep={} flags={:?} error={:?}",
        o.implicit_keep, o.implicit_keep_flags, o.error
    );
}
