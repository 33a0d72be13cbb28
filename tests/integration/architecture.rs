//! The layers point down: `http` → domains (`oauth`, `registry`,
//! `principals`) → `auth` → `models` → `db`. This reads the sources and fails
//! on any import that points up or sideways, and on a file without its
//! one-line statement of purpose.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `crate::` modules a file names outside comments.
fn imports(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Which top-level modules each layer may import (besides itself and the
/// leaf utilities `error`, `blocking`, `clock`, `names`, `page`).
const RULES: &[(&str, &[&str])] = &[
    ("db", &[]),
    ("models", &["db"]),
    ("auth", &["models", "db"]),
    ("oauth", &["auth", "models", "db"]),
    ("principals", &["auth", "models", "db"]),
    ("registry", &["auth", "models", "db"]),
];

const LEAVES: &[&str] = &["error", "blocking", "clock", "feed", "names", "page", "telemetry"];

#[test]
fn layers_import_only_downwards() {
    let mut bad = Vec::new();
    for (layer, allowed) in RULES {
        let mut files = Vec::new();
        let dir = src().join(layer);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
        for file in files {
            for m in imports(&file) {
                if m != *layer && !allowed.contains(&m.as_str()) && !LEAVES.contains(&m.as_str()) {
                    bad.push(format!("{} imports crate::{m}", file.display()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "imports against the layers:\n{}", bad.join("\n"));
}

#[test]
fn leaf_utilities_import_no_layer_above_models() {
    let mut bad = Vec::new();
    for leaf in LEAVES {
        let file = src().join(format!("{leaf}.rs"));
        for m in imports(&file) {
            if !["db", "models", "blocking", "clock", "error"].contains(&m.as_str()) {
                bad.push(format!("{leaf}.rs imports crate::{m}"));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_file_states_its_job_first() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//! "))
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "no //! first line: {missing:?}");
}
