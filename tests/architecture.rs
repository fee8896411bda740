//! The module layering: no two top-level modules depend on each other, directly or through
//! others. Read from the source: a `crate::NAME` path is a dependency on `NAME`.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn top_level_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let first = rel.components().next().unwrap().as_os_str();
            let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let entry = deps.entry(module.clone()).or_default();
            for (i, _) in text.match_indices("crate::") {
                let name: String = text[i + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != module && !name.is_empty() {
                    entry.insert(name);
                }
            }
        }
    }
    deps
}

#[test]
fn the_top_level_modules_have_no_cycles() {
    let deps = top_level_dependencies();
    for start in deps.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((m, path)) = stack.pop() {
            for d in deps.get(&m).into_iter().flatten() {
                assert!(d != start, "a module cycle: {} -> {d}", path.join(" -> "));
                if seen.insert(d.clone()) {
                    let mut p = path.clone();
                    p.push(d.clone());
                    stack.push((d.clone(), p));
                }
            }
        }
    }
    let uses = |a: &str, b: &str| deps.get(a).is_some_and(|d| d.contains(b));
    assert!(
        !uses("watch", "commands"),
        "watch mode uses a command's code"
    );
    assert!(!uses("state", "workspace") && !uses("workspace", "state"));
    // exec takes the servers as data: the services depend on exec's lifetime, never back.
    for m in ["services", "commands", "watch", "progress"] {
        assert!(!uses("exec", m), "exec uses {m}");
    }
    assert!(!uses("services", "commands") && !uses("services", "watch"));
}
