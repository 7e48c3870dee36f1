//! The translation files agree: every locale has every key of `en.toml`
//! and no other, with the same `{arguments}`, and a known plural rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[path = "../../i18n_files.rs"]
mod i18n_files;
use i18n_files::read;

fn arguments(text: &str) -> BTreeSet<&str> {
    text.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}'))
        .map(|(a, _)| a)
        .collect()
}

fn locales() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../locales");
    i18n_files::files(&dir)
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// What is wrong with locale `name` (its texts `map`) against English.
fn problems(
    en: &BTreeMap<String, String>,
    name: &str,
    map: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for key in en.keys().filter(|k| !map.contains_key(*k)) {
        problems.push(format!("{name}: missing {key}"));
    }
    for key in map.keys().filter(|k| !en.contains_key(*k)) {
        problems.push(format!("{name}: {key} is not in en.toml"));
    }
    for (key, text) in map {
        if let Some(source) = en.get(key) {
            if arguments(text) != arguments(source) {
                problems.push(format!(
                    "{name}: {key} has arguments {:?}, en.toml {:?}",
                    arguments(text),
                    arguments(source)
                ));
            }
        }
    }
    match map.get("meta.plural").map(String::as_str) {
        Some("one_other" | "other") => {}
        other => problems.push(format!(
            "{name}: meta.plural is {other:?}, not one_other or other"
        )),
    }
    problems
}

#[test]
fn every_locale_has_every_key_with_the_same_arguments() {
    let files = locales();
    assert!(files.len() >= 2, "en and ko at least: {files:?}");
    let en = read(files.iter().find(|p| p.ends_with("en.toml")).unwrap());
    let all: Vec<String> = files
        .iter()
        .flat_map(|p| problems(&en, &p.file_name().unwrap().to_string_lossy(), &read(p)))
        .collect();
    assert!(all.is_empty(), "{}", all.join("\n"));
}

#[test]
fn a_missing_key_an_extra_key_and_a_renamed_argument_are_problems() {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let en = map(&[
        ("meta.plural", "one_other"),
        ("a.files", "{n} files"),
        ("a.title", "Files"),
    ]);
    let ko = map(&[
        ("meta.plural", "other"),
        ("a.files", "파일 {count}개"),
        ("a.extra", "x"),
    ]);
    assert_eq!(
        problems(&en, "ko.toml", &ko),
        [
            "ko.toml: missing a.title",
            "ko.toml: a.extra is not in en.toml",
            "ko.toml: a.files has arguments {\"count\"}, en.toml {\"n\"}",
        ]
    );
    assert!(problems(&en, "en.toml", &en).is_empty());
}

/// Texts the same in Korean as in English, each on purpose; a new one is
/// probably untranslated.
const SAME_IN_KOREAN: &[&str] = &[
    "format.group",
    "format.decimal",
    "common.text",
    "progress.done",
];

#[test]
fn the_korean_table_is_translated_wherever_english_has_words() {
    use batchboard_core::i18n::{I18n, Key};
    let ko = I18n::get("ko");
    let same: Vec<&str> = Key::all()
        .iter()
        .filter(|k| ko.t(**k) == I18n::english().t(**k))
        .map(|k| k.name())
        .filter(|name| !SAME_IN_KOREAN.contains(name))
        .collect();
    assert!(same.is_empty(), "Korean texts still in English: {same:?}");
}
