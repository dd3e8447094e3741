//! Scratch timing (not committed).
use postern_sieve::*;
use std::sync::Arc;
struct H;
impl Host for H {
    fn mailbox_exists(&self, _: &str) -> bool {
        true
    }
    fn include(&mut self, _: &str, _: IncludeLocation) -> Result<Arc<Script>, String> {
        Err("no".into())
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
    let s = compile(&src, &Limits::default()).unwrap();
    let ctx = Context {
        envelope: Envelope {
            from: "s@x".into(),
            to: "u@y".into(),
            orig_to: None,
            auth: None,
        },
        recipient_delimiter: Some('+'),
        user_addresses: vec![],
        now: 0,
        zone_offset_minutes: 0,
        limits: Limits::default(),
    };
    let t = std::time::Instant::now();
    let n = 1000;
    for _ in 0..n {
        let o = execute(&s, &msg, &ctx, &mut H);
        std::hint::black_box(o);
    }
    println!("{:?} per run", t.elapsed() / n);
}
