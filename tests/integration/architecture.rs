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

const LEAVES: &[&str] = &[
    "error",
    "blocking",
    "clock",
    "feed",
    "group_commit",
    "names",
    "outbound",
    "page",
    "telemetry",
];

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
        // A leaf is one file, or a folder of files (`outbound/`).
        let mut files = vec![src().join(format!("{leaf}.rs"))];
        if !files[0].exists() {
            files.clear();
            rust_files(&src().join(leaf), &mut files);
        }
        for file in files {
            for m in imports(&file) {
                if m != *leaf && !["db", "models", "blocking", "clock", "error"].contains(&m.as_str()) {
                    bad.push(format!("{} imports crate::{m}", file.display()));
                }
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

/// The web framework stays in `http/` and the start-up code (`cli.rs`,
/// `main.rs`): the domain, its errors and the models know nothing of it.
#[test]
fn no_web_framework_below_http() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let http = src().join("http");
    let start_up = [src().join("cli.rs"), src().join("main.rs")];
    let mut bad = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&http) && !start_up.contains(f)) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ["actix_web", "actix_http", "actix_service", "actix_server"]
                .iter()
                .any(|c| code.contains(c))
            {
                bad.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "the web framework below http/:\n{}", bad.join("\n"));
}

/// Kinds and statuses are enums in rows too: nothing compares a row's
/// string to an enum's name (`p.kind == PrincipalKind::Service.as_str()`).
#[test]
fn no_string_comparisons_with_enum_names() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut bad = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for op in ["== ", "!= "] {
                let Some(at) = code.find(op) else { continue };
                let rhs = &code[at + op.len()..];
                let path: String = rhs
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                if path.contains("::") && rhs[path.len()..].starts_with(".as_str()") {
                    bad.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "string comparisons with enum names:\n{}",
        bad.join("\n")
    );
}

/// One UTC time type: no struct field, row or not, holds a `NaiveDateTime`
/// (rows hold `DateTime<Utc>` through `db::time`), so no domain code
/// converts between the two.
#[test]
fn rows_hold_one_utc_time_type() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut bad = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("").trim();
            let field = code.strip_prefix("pub ").unwrap_or(code);
            let Some((name, ty)) = field.split_once(": ") else {
                continue;
            };
            if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && ty.ends_with(',')
                && ty.contains("NaiveDateTime")
                && !file.starts_with(src().join("db"))
            {
                bad.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "fields holding NaiveDateTime:\n{}", bad.join("\n"));
}

/// The sibling files a file of `folder` names: `super::x`, `super::{x, y}`
/// and `crate::folder::x`, outside comments and its tests module.
fn sibling_imports(path: &Path, folder: &str, siblings: &[String]) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    let own = format!("crate::{}::", folder.replace('/', "::"));
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for prefix in ["super::", own.as_str()] {
            let mut rest = code;
            while let Some(at) = rest.find(prefix) {
                rest = &rest[at + prefix.len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                    None => vec![rest],
                };
                for name in names {
                    let name: String = name
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if siblings.contains(&name) {
                        found.push(name);
                    }
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Files of one folder never import each other in a circle: each folder's
/// files form a ladder, so each can be read knowing only those below it.
#[test]
fn no_import_loop_between_files_of_a_folder() {
    let mut dirs = vec![src()];
    let mut loops = Vec::new();
    while let Some(dir) = dirs.pop() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
        let folder = dir.strip_prefix(src()).unwrap().to_string_lossy().into_owned();
        let stem = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
        let siblings: Vec<String> = files.iter().map(|p| stem(p)).filter(|s| s != "mod").collect();
        let edges: std::collections::BTreeMap<String, Vec<String>> = files
            .iter()
            .filter(|p| stem(p) != "mod")
            .map(|p| {
                let me = stem(p);
                let to = sibling_imports(p, &folder, &siblings)
                    .into_iter()
                    .filter(|s| *s != me)
                    .collect();
                (me, to)
            })
            .collect();
        // Depth-first from each file: a path back to it is a loop.
        for start in edges.keys() {
            let mut stack = vec![vec![start.clone()]];
            while let Some(path) = stack.pop() {
                let last = path.last().unwrap();
                for next in edges.get(last).into_iter().flatten() {
                    if next == start {
                        loops.push(format!("{folder}: {} → {start}", path.join(" → ")));
                    } else if !path.contains(next) {
                        let mut longer = path.clone();
                        longer.push(next.clone());
                        stack.push(longer);
                    }
                }
            }
        }
    }
    assert!(loops.is_empty(), "import loops:\n{}", loops.join("\n"));
}

/// A function with more than seven parameters wants a type that names what
/// travels together (as `grants::Issued` does): clippy's default is not
/// switched off anywhere.
#[test]
fn no_function_opts_out_of_the_argument_limit() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let opted: Vec<String> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .contains(concat!("clippy::", "too_many_arguments"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(opted.is_empty(), "{opted:?}");
}
