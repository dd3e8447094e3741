//! Replays the committed fuzz corpus and the saved crashing inputs through the fuzz targets, on
//! the stable toolchain, as part of `cargo test --workspace`: every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the same function the
//! fuzzer runs, so a regression of a fixed crash, or of an invariant a target checks, fails here.

use std::fs;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted (a missing folder has none).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[test]
fn every_target_replays_its_corpus_and_regressions() {
    let mut total = 0;
    for (name, target) in postern_fuzz_targets::TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ has no seeds");
        for path in corpus
            .iter()
            .chain(files(&fuzz_dir().join("regressions").join(name)).iter())
        {
            let data = fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} fails on {}", path.display());
            total += 1;
        }
    }
    println!("replayed {total} inputs");
}

#[test]
fn every_fuzz_binary_is_a_listed_target() {
    // fuzz/fuzz_targets/<name>.rs must exist for each target, and only for them.
    let mut bins: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    bins.sort();
    let mut names: Vec<String> = postern_fuzz_targets::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    names.sort();
    assert_eq!(bins, names);
}
