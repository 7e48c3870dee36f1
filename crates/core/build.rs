//! Reads the translation files (`locales/*.toml` at the workspace root) and
//! generates the `Key` enum (one variant per key of `en.toml`, the source
//! language) and every locale's table, in key order. A key missing from
//! another locale falls back to English at run time; the test
//! `locales::every_locale_has_every_key_with_the_same_arguments` (core
//! crate, tests/it) fails on it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

#[path = "i18n_files.rs"]
mod i18n_files;
use i18n_files::read;

fn variant(name: &str) -> String {
    name.split(['.', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../locales");
    println!("cargo:rerun-if-changed={}", dir.display());
    let files = i18n_files::files(&dir);
    for (_, p) in &files {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    assert!(
        files.first().is_some_and(|(c, _)| c == "en"),
        "locales/en.toml is missing"
    );
    let en = read(&files[0].1);
    let mut out = String::new();
    let mut seen = BTreeMap::new();
    out.push_str("/// Every translation key (generated from `locales/en.toml`).\n");
    out.push_str("#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[repr(u16)]\npub enum Key {\n");
    for name in en.keys() {
        let v = variant(name);
        if let Some(other) = seen.insert(v.clone(), name.clone()) {
            panic!("keys `{other}` and `{name}` both make `Key::{v}`");
        }
        writeln!(out, "    /// {:?}\n    {v},", en[name]).unwrap();
    }
    out.push_str("}\n");
    writeln!(out, "pub(crate) const COUNT: usize = {};", en.len()).unwrap();
    out.push_str("pub(crate) static ALL: [Key; COUNT] = [");
    for name in en.keys() {
        write!(out, "Key::{}, ", variant(name)).unwrap();
    }
    out.push_str("];\npub(crate) static NAMES: [&str; COUNT] = [");
    for name in en.keys() {
        write!(out, "{name:?}, ").unwrap();
    }
    out.push_str("];\npub(crate) static EN: [&str; COUNT] = [");
    for v in en.values() {
        write!(out, "{v:?}, ").unwrap();
    }
    out.push_str("];\n/// Every locale: its code and its own name for itself.\npub static LOCALES: &[(&str, &str)] = &[");
    let mut tables = String::new();
    for (code, path) in &files {
        let map = if code == "en" { en.clone() } else { read(path) };
        let own = map
            .get("meta.name")
            .cloned()
            .unwrap_or_else(|| code.clone());
        write!(out, "({code:?}, {own:?}), ").unwrap();
        write!(tables, "({code:?}, &[").unwrap();
        for name in en.keys() {
            match map.get(name) {
                Some(v) => write!(tables, "Some({v:?}), ").unwrap(),
                None => tables.push_str("None, "),
            }
        }
        tables.push_str("]), ");
    }
    out.push_str("];\n");
    out.push_str("/// Every locale's table, in key order (the server's; a browser gets its\n/// reader's table in the page).\n#[cfg(not(target_arch = \"wasm32\"))]\n");
    writeln!(
        out,
        "pub(crate) static TABLES: &[(&str, &[Option<&str>; COUNT])] = &[{tables}];"
    )
    .unwrap();
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("i18n_keys.rs");
    std::fs::write(dest, out).unwrap();
}
