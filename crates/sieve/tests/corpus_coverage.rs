//! The differential corpus (tests/corpus) stays complete: every extension postern advertises is
//! required by at least one script that compiles, some scripts must fail to compile, and the
//! messages are varied enough to be worth comparing.

use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn files(dir: &str, ext: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(corpus().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            (name, text)
        })
        .collect();
    out.sort();
    out
}

/// The extension names a script's `require` commands list (strings on `require` lines).
fn required(script: &str) -> Vec<String> {
    script
        .lines()
        .filter(|l| l.trim_start().starts_with("require"))
        .flat_map(|l| l.split('"').skip(1).step_by(2).map(str::to_string))
        .collect()
}

#[test]
fn every_extension_is_exercised() {
    let scripts = files("scripts", "sieve");
    let passing: Vec<&(String, String)> = scripts
        .iter()
        .filter(|(n, _)| !n.starts_with("fail-"))
        .collect();
    for ext in postern_sieve::EXTENSIONS {
        assert!(
            passing
                .iter()
                .any(|(_, s)| required(s).iter().any(|r| r == ext)),
            "no corpus script requires {ext}"
        );
    }
    assert!(scripts.len() >= 40, "only {} scripts", scripts.len());
    assert!(
        scripts
            .iter()
            .filter(|(n, _)| n.starts_with("fail-"))
            .count()
            >= 5
    );
}

#[test]
fn every_script_says_what_it_tests() {
    for (name, text) in files("scripts", "sieve") {
        let first = text.lines().next().unwrap_or("");
        assert!(first.starts_with("# "), "{name} has no leading comment");
    }
}

#[test]
fn messages_are_varied() {
    let messages = files("messages", "eml");
    assert!(messages.len() >= 15, "only {} messages", messages.len());
    let any = |needle: &str| messages.iter().any(|(_, m)| m.contains(needle));
    for needle in [
        "multipart/alternative",
        "Content-Transfer-Encoding: base64",
        "Content-Transfer-Encoding: quoted-printable",
        "=?UTF-8?",
        "List-Id:",
        "Auto-Submitted: auto-replied",
        "Resent-To:",
        "message/rfc822",
        "+0530",
        "-0800",
    ] {
        assert!(any(needle), "no corpus message has {needle}");
    }
    assert!(messages
        .iter()
        .any(|(_, m)| m.matches("Received:").count() >= 3));
}
