//! The workspace's own rules, checked so that they stay true: every third-party version is
//! declared once, in the root `[workspace.dependencies]`, and every crate takes the workspace
//! lints.

use std::path::{Path, PathBuf};

fn members() -> Vec<PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&crates)
        .unwrap()
        .map(|e| e.unwrap().path().join("Cargo.toml"))
        .filter(|p| p.exists())
        .collect();
    out.sort();
    assert!(out.len() >= 10, "found only {out:?}");
    out
}

/// The dependency tables of a manifest, as (table name, dependency name, declaration).
fn dependencies(manifest: &Path) -> Vec<(String, String, toml::Value)> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let mut out = Vec::new();
    for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = doc.get(table).and_then(toml::Value::as_table) {
            for (name, decl) in deps {
                out.push((table.to_string(), name.clone(), decl.clone()));
            }
        }
    }
    out
}

#[test]
fn every_dependency_version_is_declared_by_the_workspace() {
    let mut strays = Vec::new();
    for manifest in members() {
        for (table, name, decl) in dependencies(&manifest) {
            let from_workspace = decl
                .as_table()
                .and_then(|t| t.get("workspace"))
                .and_then(toml::Value::as_bool)
                == Some(true);
            if !from_workspace {
                strays.push(format!("{}: [{table}] {name}", manifest.display()));
            }
        }
    }
    assert!(
        strays.is_empty(),
        "declare these in the root [workspace.dependencies] and write `name.workspace = true`:\n{}",
        strays.join("\n")
    );
}

#[test]
fn every_crate_takes_the_workspace_lints() {
    let mut strays = Vec::new();
    for manifest in members() {
        let doc: toml::Table =
            toml::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        let inherits = doc
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(toml::Value::as_bool)
            == Some(true);
        if !inherits {
            strays.push(manifest.display().to_string());
        }
    }
    assert!(
        strays.is_empty(),
        "add `[lints] workspace = true` to:\n{}",
        strays.join("\n")
    );
}
