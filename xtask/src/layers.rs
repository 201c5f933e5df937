//! Lint checks of `openbox/src` that read the code as text:
//!
//! * its top-level modules import each other in one direction only — a lower layer (wire,
//!   config, client) never reaches up to a higher one (governance, hooks, temporal), and there
//!   is no cycle;
//! * its documentation cites no document a user cannot open (`§…`, `design Dn`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The `crate::<module>` references of every top-level module (comments and `mod tests`
/// excluded), by module.
fn imports(src: &Path) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src)? {
        let rel = file.strip_prefix(src).map_err(|e| e.to_string())?;
        let module = rel
            .components()
            .next()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_owned()
            })
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        let entry = graph.entry(module.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    entry.insert(name);
                }
            }
        }
    }
    Ok(graph)
}

fn rust_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            out.extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(out)
}

/// A cycle of `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut found = path[i..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

/// The layers, lowest first; a module may import only modules of its own or a lower layer.
const LAYERS: [&[&str]; 7] = [
    &["text", "ids", "secrets", "metrics", "blocking"],
    &["wire"],
    &["config"],
    &["client"],
    &["governance"],
    &["hooks"],
    &["temporal", "guide", "private", "lib"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Lint: no cycle, no import of a higher layer.
pub fn check(root: &Path) -> Result<bool, String> {
    let graph = imports(&root.join("openbox/src"))?;
    let mut ok = true;
    if let Some(c) = cycle(&graph) {
        eprintln!(
            "xtask lint: openbox/src modules import each other in a cycle: {}",
            c.join(" → ")
        );
        ok = false;
    }
    for (module, uses) in &graph {
        let Some(own) = layer(module) else {
            eprintln!(
                "xtask lint: openbox/src/{module} is in no layer of xtask/src/layers.rs: add it"
            );
            ok = false;
            continue;
        };
        for used in uses {
            // A re-export at the crate root (`crate::spawn`) is not a module.
            if let Some(theirs) = layer(used)
                && theirs > own
            {
                eprintln!("xtask lint: openbox/src/{module} imports crate::{used}, a higher layer");
                ok = false;
            }
        }
    }
    Ok(ok)
}

/// Lint: rustdoc of the published crates cites no unpublished document.
pub fn check_docs_self_contained(root: &Path) -> Result<bool, String> {
    let mut ok = true;
    for dir in [
        "openbox/src",
        "openbox/docs",
        "openbox-macros/src",
        "openbox-dev/src",
    ] {
        for file in rust_files_and_docs(&root.join(dir))? {
            let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
            for (n, line) in text.lines().enumerate() {
                let doc = line.trim_start();
                let is_doc = doc.starts_with("///")
                    || doc.starts_with("//!")
                    || file.extension().is_some_and(|e| e == "md");
                if is_doc && (doc.contains('§') || cites_design(doc)) {
                    eprintln!(
                        "xtask lint: {}:{}: cites a document users cannot open: state the reason instead",
                        file.display(),
                        n + 1
                    );
                    ok = false;
                }
            }
        }
    }
    Ok(ok)
}

fn cites_design(line: &str) -> bool {
    line.match_indices("design D")
        .any(|(i, m)| line[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
        || line.contains("design.md")
}

fn rust_files_and_docs(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            out.extend(rust_files_and_docs(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "md") {
            out.push(path);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry((*a).into()).or_default().insert((*b).into());
        }
        g
    }

    #[test]
    fn finds_cycles() {
        assert!(cycle(&graph(&[("client", "config"), ("config", "secrets")])).is_none());
        let c = cycle(&graph(&[("client", "config"), ("config", "client")])).unwrap();
        assert_eq!(c.first(), c.last());
        assert!(cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])).is_some());
    }

    #[test]
    fn design_citations() {
        assert!(cites_design("/// see design D9 for why"));
        assert!(!cites_design("/// the design Doc"));
    }

    /// The crate as it is: no cycle, every module in a layer, nothing reaches up.
    #[test]
    fn the_crate_is_layered() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert!(check(root).unwrap());
    }

    #[test]
    fn the_docs_cite_nothing_users_cannot_open() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert!(check_docs_self_contained(root).unwrap());
    }
}
