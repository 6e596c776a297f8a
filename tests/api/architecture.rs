//! The house rules, read from the source: the file-level import graph has no loop, and no
//! arrow runs back up a layer (`main` → `bench` → `app` → `http` → `jobs` → `ledger` → `store`,
//! with `config` and `telemetry` under all; in the domain, `values` → `facts` → `rules` → the
//! aggregates; in the projections, the pure folds under their SQL); the domain and the folds do
//! no I/O; and no function outside test code is longer than 80 lines.
//!
//! Imports are read like `../shared/tools/import-loops` reads them: `use` trees and paths that
//! start with `crate::`, `super::`, `self::`, a declared child module or a workspace crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// (crate name as used in paths, its source folder).
const CRATES: [(&str, &str); 4] = [
    ("studyledger", "src"),
    ("studyledger_projections", "projections/src"),
    ("studyledger_aggregates", "aggregates/src"),
    ("studyledger_xapi", "xapi/src"),
];

/// Source text with comments, strings and character literals blanked out (newlines kept), so
/// that braces and paths are only the code's.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && is_raw_start(&chars, i) {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            i += 2 + hashes;
            out.push_str("\"\"");
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&h| h == '#') {
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push_str("\"\"");
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_raw_start(chars: &[char], i: usize) -> bool {
    let before_ok = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    let after = chars[i + 1..].iter().find(|&&h| h != '#');
    before_ok && after == Some(&'"')
}

/// `'x'` or `'\n'`, as opposed to a lifetime `'a`.
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// The code before the file's `#[cfg(test)] mod tests` (tests may import anything).
fn production_part(code: &str) -> &str {
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]") {
        let after = code[from + at + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod tests") {
            return &code[..from + at];
        }
        from += at + 1;
    }
    code
}

fn rust_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![folder.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A source file: its crate, module path and production code.
struct SourceFile {
    path: String,
    krate: &'static str,
    module: Vec<String>,
    code: String,
}

fn source_files() -> Vec<SourceFile> {
    let mut files = Vec::new();
    for (krate, folder) in CRATES {
        let root = Path::new(ROOT).join(folder);
        for path in rust_files(&root) {
            let relative = path.strip_prefix(&root).expect("inside its crate");
            let mut module: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let last = module.last().cloned().unwrap_or_default();
            if (last == "lib" || last == "main") && module.len() == 1 || last == "mod" {
                module.pop();
            }
            if last == "main" && module.is_empty() {
                // The binary: its own root, importing the library by the crate's name.
                module.push("<main>".to_owned());
            }
            let source = std::fs::read_to_string(&path).expect("readable source");
            files.push(SourceFile {
                path: path
                    .strip_prefix(ROOT)
                    .expect("inside the workspace")
                    .to_string_lossy()
                    .into_owned(),
                krate,
                module,
                code: production_part(&code_only(&source)).to_owned(),
            });
        }
    }
    files
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.to_owned()];
    };
    let (head, body) = (
        &tree[..open],
        &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())],
    );
    let mut parts = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for c in body.chars() {
        match c {
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            '{' => {
                depth += 1;
                current.push(c);
            }
            '}' => {
                depth -= 1;
                current.push(c);
            }
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
        .iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |x| format!("{head}{x}")))
        .collect()
}

/// Every path the code names that could lead to another file of the workspace.
fn referenced_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let tail = &rest[at + 3..];
        let end = tail.find(';').unwrap_or(tail.len());
        paths.extend(expand(&tail[..end]));
        rest = &tail[end..];
    }
    let mut path = String::new();
    for c in code.chars().chain(std::iter::once(' ')) {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            path.push(c);
        } else {
            if path.contains("::") {
                paths.push(path.clone());
            }
            path.clear();
        }
    }
    paths
        .into_iter()
        .map(|p| {
            let p = p.split(" as ").next().unwrap_or_default().to_owned();
            p.split("::")
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .filter(|p: &Vec<String>| !p.is_empty())
        .collect()
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(word) {
        let start = from + at;
        let before = text[..start].chars().next_back();
        let after = text[start + word.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if boundary(before) && boundary(after) {
            return Some(start);
        }
        from = start + word.len();
    }
    None
}

/// `mod child;` declarations of a file.
fn child_modules(code: &str) -> BTreeSet<String> {
    code.lines()
        .filter_map(|line| {
            let line = line
                .trim()
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// The import graph: for each file, the files it imports.
fn import_graph(files: &[SourceFile]) -> BTreeMap<String, BTreeSet<String>> {
    let index: BTreeMap<(&str, &[String]), &str> = files
        .iter()
        .map(|f| ((f.krate, f.module.as_slice()), f.path.as_str()))
        .collect();
    let resolve = |krate: &str, path: &[String]| -> Option<String> {
        (0..=path.len())
            .rev()
            .find_map(|n| index.get(&(krate, &path[..n])).map(|f| (*f).to_owned()))
    };
    let mut graph = BTreeMap::new();
    for file in files {
        let children = child_modules(&file.code);
        let here: Vec<String> = file
            .module
            .iter()
            .filter(|m| *m != "<main>")
            .cloned()
            .collect();
        let mut imports = BTreeSet::new();
        for path in referenced_paths(&file.code) {
            let first = path[0].as_str();
            let target = if first == "crate" {
                resolve(file.krate, &path[1..])
            } else if first == "self" {
                resolve(file.krate, &[here.clone(), path[1..].to_vec()].concat())
            } else if first == "super" {
                let ups = path.iter().take_while(|s| *s == "super").count();
                let base = &here[..here.len().saturating_sub(ups)];
                resolve(file.krate, &[base.to_vec(), path[ups..].to_vec()].concat())
            } else if children.contains(first) {
                resolve(file.krate, &[here.clone(), path.clone()].concat())
            } else if let Some((krate, _)) = CRATES.iter().find(|(k, _)| *k == first) {
                resolve(krate, &path[1..])
            } else {
                None
            };
            if let Some(target) = target.filter(|t| *t != file.path) {
                imports.insert(target);
            }
        }
        graph.insert(file.path.clone(), imports);
    }
    graph
}

/// The files on a loop of the graph, if any.
fn a_loop(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            return Some(path[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// A file's layer: higher layers may import lower ones (and their own), never higher ones.
fn layer(path: &str) -> (u8, &'static str) {
    let table: [(&str, u8, &str); 25] = [
        ("src/main.rs", 7, "main"),
        ("src/bench/", 6, "bench"),
        ("src/app.rs", 5, "app"),
        ("src/http/", 4, "http"),
        ("src/jobs/", 3, "jobs"),
        ("src/ledger.rs", 2, "ledger"),
        ("src/ledger/", 2, "ledger"),
        ("src/store/", 1, "store"),
        ("src/config.rs", 0, "config"),
        ("src/telemetry.rs", 0, "telemetry"),
        ("src/lib.rs", 0, "lib"),
        ("projections/src/sql/", 12, "view SQL"),
        ("projections/src/rollup.rs", 11, "folds"),
        ("projections/src/counters.rs", 11, "folds"),
        ("projections/src/ledger_lines.rs", 11, "folds"),
        ("projections/src/fold.rs", 10, "folds"),
        ("projections/src/lib.rs", 10, "folds"),
        ("aggregates/src/rules/", 22, "rules"),
        ("aggregates/src/facts.rs", 21, "facts"),
        ("aggregates/src/values/", 20, "values"),
        ("aggregates/src/rejection.rs", 20, "values"),
        ("aggregates/src/lib.rs", 20, "values"),
        ("aggregates/src/", 23, "aggregates"),
        ("xapi/src/", 30, "xapi"),
        ("", 99, "unknown"),
    ];
    table
        .iter()
        .find(|(prefix, _, _)| path.starts_with(prefix))
        .map_or((99, "unknown"), |(_, level, name)| (*level, *name))
}

/// Which crate (by folder) a file belongs to; imports across crates are Cargo's to check.
fn crate_of(path: &str) -> &str {
    path.split('/').next().unwrap_or_default()
}

#[test]
fn the_import_graph_has_no_loop_and_no_arrow_back_up_a_layer() {
    let files = source_files();
    assert!(files.len() > 40, "the sources were found: {}", files.len());
    let graph = import_graph(&files);
    assert_eq!(a_loop(&graph), None, "files that import each other");
    let mut upward = Vec::new();
    for (from, imports) in &graph {
        for to in imports {
            let (from_layer, to_layer) = (layer(from), layer(to));
            if crate_of(from) == crate_of(to) && to_layer.0 > from_layer.0 {
                upward.push(format!(
                    "{from} ({}) -> {to} ({})",
                    from_layer.1, to_layer.1
                ));
            }
        }
    }
    assert_eq!(
        upward,
        Vec::<String>::new(),
        "imports that point up a layer"
    );
    let unplaced: Vec<&String> = graph.keys().filter(|f| layer(f).0 == 99).collect();
    assert_eq!(unplaced, Vec::<&String>::new(), "files without a layer");
}

#[test]
fn the_domain_and_the_folds_do_no_io() {
    for file in source_files() {
        let pure = file.path.starts_with("aggregates/")
            || (file.path.starts_with("projections/") && !file.path.contains("/sql/"));
        if !pure {
            continue;
        }
        for forbidden in ["sqlx", "axum", "tokio", "reqwest", "std::fs", "std::net"] {
            let uses = file
                .code
                .match_indices(&format!("{forbidden}::"))
                .any(|(at, _)| {
                    let before = file.code[..at].chars().next_back();
                    before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
                });
            assert!(!uses, "{} uses {forbidden}", file.path);
        }
    }
}

/// Every function of the production code with its length in lines (signature to closing brace).
fn function_lengths(file: &SourceFile) -> Vec<(String, usize)> {
    let code = &file.code;
    let mut lengths = Vec::new();
    let mut from = 0;
    while let Some(at) = find_word(&code[from..], "fn") {
        let start = from + at;
        from = start + 2;
        let name: String = code[start + 2..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            // A function pointer type, not a function.
            continue;
        }
        let Some(body) = code[start..].find(['{', ';']).map(|b| start + b) else {
            continue;
        };
        if &code[body..=body] == ";" {
            continue;
        }
        let mut depth = 0;
        let mut end = body;
        for (offset, c) in code[body..].char_indices() {
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            if depth == 0 {
                end = body + offset;
                break;
            }
        }
        let lines = code[start..=end].lines().count();
        lengths.push((format!("{}: {name}", file.path), lines));
    }
    lengths
}

#[test]
fn no_function_outside_test_code_is_longer_than_80_lines() {
    let files = source_files();
    let all: Vec<(String, usize)> = files.iter().flat_map(function_lengths).collect();
    assert!(all.len() > 200, "the functions were found: {}", all.len());
    let long: Vec<&(String, usize)> = all.iter().filter(|(_, n)| *n > 80).collect();
    assert_eq!(
        long,
        Vec::<&(String, usize)>::new(),
        "functions over 80 lines"
    );
}

#[test]
fn the_reader_of_the_source_finds_what_a_person_would() {
    let code = code_only("let s = \"{ fn x() }\"; // fn y() {\nfn z() { '{' }\n");
    assert_eq!(code.matches('{').count(), 1, "{code}");
    assert_eq!(
        expand("crate::a::{b, c::{d, e}}"),
        ["crate::a::b", "crate::a::c::d", "crate::a::c::e"]
    );
    let loop_of_two: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert!(a_loop(&loop_of_two).is_some());
    let file = SourceFile {
        path: "x.rs".to_owned(),
        krate: "x",
        module: vec![],
        code: code_only(&format!(
            "fn long() {{\n{}}}\nfn short() {{}}\n",
            "x;\n".repeat(90)
        )),
    };
    let lengths = function_lengths(&file);
    assert_eq!(lengths[0].1, 92);
    assert_eq!(lengths[1].1, 1);
}
