// Reading `locales/*.toml`, shared by the build script (which makes `Key`
// and the tables from them) and the test that compares the files. Not part
// of the library: it needs `toml`, which the browser build does without.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `section.key` → text, in key order.
pub fn read(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let table: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = BTreeMap::new();
    flatten("", &table, &mut out, path);
    out
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>, file: &Path) {
    for (k, v) in table {
        let name = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(name, s.clone());
            }
            toml::Value::Table(t) => flatten(&name, t, out, file),
            _ => panic!("{}: `{name}` must be a string or a table", file.display()),
        }
    }
}

/// Every `locales/<code>.toml`, English first: `(code, path)`.
pub fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| Some((p.file_stem()?.to_string_lossy().into_owned(), p)))
        .collect();
    files.sort_by_key(|(code, _)| (code != "en", code.clone()));
    files
}
