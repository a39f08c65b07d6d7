//! The facade's imports run one way. Reads `src/`, collects every module's
//! references to other modules (`use crate::...`, `super::...`, paths in
//! code; test modules and comments left out), and fails on:
//! - a cycle between any two modules (files), naming it;
//! - an import from a lower layer into a higher one, by README's drawing
//!   ("How a request goes through", the ```layers block), read here.
//!
//! The parsing is textual (the shapes rustfmt leaves: `use` trees with
//! braces, paths in code); it is checked against itself by the unit cases
//! at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules from the top (the binary) down, as README's drawing
/// (the ```layers block of "How a request goes through") lists them, one
/// layer per line. A module may import only from modules of a lower layer;
/// modules of one layer may not import each other.
fn layers() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let block = readme
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README draws the layers in a ```layers block");
    block
        .lines()
        .map(|line| line.split(',').map(|module| module.trim().to_owned()).collect())
        .collect()
}

type Module = Vec<String>;

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` -> `a::b`; `src/lib.rs` -> the root;
/// `src/main.rs` -> `main` (the binary, which names the library
/// `alliance_glance`).
fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    match last.as_str() {
        "lib.rs" | "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_owned()),
    }
    parts
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// The code of a file without its test module and without comments.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            // `"http://..."` in a string is cut too; a reference after one on
            // the same line would be missed, and there is none.
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path the code names that starts with `crate`, `super`, `self` (or
/// `alliance_glance` in the binary), `use` trees expanded.
fn paths(code: &str, crate_name: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut rest = code;
    // `use` statements, braces expanded.
    while let Some(at) = find_word(rest, "use") {
        let after = &rest[at + 3..];
        let end = after.find(';').unwrap_or(after.len());
        // `x as y` names `x`; then the tree without its spaces.
        let words: Vec<&str> = after[..end].split_whitespace().collect();
        let mut kept = Vec::new();
        let mut index = 0;
        while index < words.len() {
            if words[index] == "as" {
                index += 2;
                // `as y,` or `as y}` keeps what follows the name.
                if let Some(alias) = words.get(index - 1) {
                    kept.push(alias.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_'));
                }
            } else {
                kept.push(words[index]);
                index += 1;
            }
        }
        let tree: String = kept.concat();
        expand(&tree, &mut Vec::new(), &mut found);
        rest = &after[end..];
    }
    // Paths anywhere in the code (a `use` path is found again: harmless).
    let bytes = code.as_bytes();
    for start in 0..bytes.len() {
        if !code.is_char_boundary(start) {
            continue;
        }
        let boundary = start == 0
            || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_' || bytes[start - 1] == b':');
        if !boundary {
            continue;
        }
        let tail = &code[start..];
        let named = tail.starts_with(crate_name) && tail[crate_name.len()..].starts_with("::");
        if named
            || ["crate::", "super::", "self::"]
                .iter()
                .any(|prefix| tail.starts_with(prefix))
        {
            let path: Vec<String> = tail
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or_default()
                .split("::")
                .filter(|segment| !segment.is_empty())
                .map(str::to_owned)
                .collect();
            found.push(path);
        }
    }
    found
        .into_iter()
        .filter(|path| {
            path.len() > 1
                && path
                    .first()
                    .is_some_and(|first| ["crate", "super", "self", crate_name].contains(&first.as_str()))
        })
        .collect()
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let after = bytes.get(at + word.len()).is_none_or(|b| b.is_ascii_whitespace());
        if before && after {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// `a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let (head, group) = match tree.find('{') {
        Some(open) if tree.ends_with('}') => (&tree[..open], Some(&tree[open + 1..tree.len() - 1])),
        _ => (tree, None),
    };
    let depth = prefix.len();
    prefix.extend(
        head.split("::")
            .filter(|segment| !segment.is_empty())
            .map(str::to_owned),
    );
    match group {
        None => out.push(prefix.clone()),
        Some(group) => {
            for item in split_top_level(group) {
                expand(item, prefix, out);
            }
        }
    }
    prefix.truncate(depth);
}

/// Splits `a, b::{c, d}, e` at the commas outside braces.
fn split_top_level(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items.into_iter().filter(|item| !item.is_empty()).collect()
}

/// The module a path lands in: the longest known module that prefixes it.
fn resolve(from: &[String], path: &[String], modules: &BTreeSet<Module>, crate_name: &str) -> Option<Module> {
    let (mut base, rest): (Module, &[String]) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some(first) if first == crate_name => (Vec::new(), &path[1..]),
        Some("self") => (from.to_vec(), &path[1..]),
        Some("super") => {
            let mut base = from.to_vec();
            let mut rest = path;
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
            (base, rest)
        }
        _ => return None,
    };
    let mut best = base.clone();
    for segment in rest {
        base.push(segment.clone());
        if modules.contains(&base) {
            best = base.clone();
        } else {
            break;
        }
    }
    Some(best)
}

fn layer(module: &[String]) -> Option<usize> {
    let top = module.first()?;
    layers().iter().position(|layer| layer.contains(top))
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|file| module_of(&src, file)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        let text = std::fs::read_to_string(file).expect("readable source");
        let targets = edges.entry(from.clone()).or_default();
        for path in paths(&code(&text), "alliance_glance") {
            if let Some(to) = resolve(&from, &path, &modules, "alliance_glance")
                && to != from
                && !to.is_empty()
            {
                targets.insert(to);
            }
        }
    }
    edges
}

/// A cycle through `start`, if any, as the modules along it.
fn cycle(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        node: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        stack: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = stack.iter().position(|on| on == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.clone());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|start| visit(start, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let edges = graph();
    assert!(edges.len() > 30, "the source tree was not found");
    if let Some(found) = cycle(&edges) {
        let names: Vec<String> = found.iter().map(|module| name(module)).collect();
        panic!("import cycle: {}", names.join(" -> "));
    }
}

#[test]
fn imports_run_down_the_layers() {
    let mut wrong = Vec::new();
    for (from, targets) in graph() {
        let Some(from_layer) = layer(&from) else {
            assert!(from.is_empty(), "{} is in no layer of README's drawing", name(&from));
            continue;
        };
        for to in targets {
            let to_layer = layer(&to).unwrap_or_else(|| panic!("{} is in no layer of README's drawing", name(&to)));
            if from.first() != to.first() && to_layer <= from_layer {
                wrong.push(format!("{} imports {}", name(&from), name(&to)));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}

#[test]
fn the_reader_of_imports_reads_them() {
    let text = "use crate::{a::{b, c}, d};\nuse super::e as f;\nfn g() { crate::h::i(); } // crate::j\n#[cfg(test)]\nmod tests { use crate::k; }";
    let found: BTreeSet<String> = paths(&code(text), "x").iter().map(|path| path.join("::")).collect();
    let expected: BTreeSet<String> = ["crate::a::b", "crate::a::c", "crate::d", "super::e", "crate::h::i"]
        .map(str::to_owned)
        .into();
    assert_eq!(found, expected);
    let modules: BTreeSet<Module> = [vec!["a".to_owned()], vec!["a".to_owned(), "b".to_owned()]].into();
    let from = vec!["a".to_owned(), "b".to_owned()];
    let path = |text: &str| text.split("::").map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        resolve(&from, &path("super::X"), &modules, "x"),
        Some(vec!["a".to_owned()])
    );
    assert_eq!(
        resolve(&from, &path("crate::a::b::Y"), &modules, "x"),
        Some(from.clone())
    );
    assert_eq!(
        resolve(&from, &path("x::a::Z"), &modules, "x"),
        Some(vec!["a".to_owned()])
    );
    let mut looped = BTreeMap::new();
    looped.insert(vec!["p".to_owned()], BTreeSet::from([vec!["q".to_owned()]]));
    looped.insert(vec!["q".to_owned()], BTreeSet::from([vec!["p".to_owned()]]));
    assert!(cycle(&looped).is_some());
}
