//! The check that every text a view shows goes through the translation
//! layer ([`crate::i18n`]): it reads this crate's sources and fails on a
//! string literal in a `view!` that a reader would see — a text node, or
//! the value of `title`, `placeholder`, `aria-label`, `alt`, `label` or a
//! `<Title text=…>` — unless it is on the allow-list (brand names, code).
//!
//! A text node (a literal directly in the markup) with any letter is text.
//! Inside Rust blocks of a view, a literal counts as text when it has a
//! letter and a space, a capital, or a letter outside ASCII; lowercase words
//! without spaces there are code (keys, argument names, CSS classes).
//! Nested `view!`s are checked as views of their own.

/// Attributes whose value a reader sees (or a screen reader reads).
const SHOWN: &[&str] = &[
    "title",
    "placeholder",
    "aria-label",
    "alt",
    "label",
    "text",
    "aria-description",
];

/// Literals that are the same in every language.
const ALLOWED: &[&str] = &["batchboard user add", "custom_id"];

/// Words that are the same in every language (removed before the check).
const BRANDS: &[&str] = &["Batchboard"];

/// `(line, literal)` of each untranslated text in `source`.
pub fn untranslated(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = source[from..].find("view!") {
        let start = from + at;
        let Some(open) = source[start..].find('{').map(|i| start + i) else {
            break;
        };
        scan_body(source, open, &mut found);
        // On from the opening, so that views nested in this one are read
        // as views too (their findings are then found twice: kept once).
        from = open + 1;
    }
    found.sort();
    found.dedup();
    found
}

/// Scans the braces opening at `open`; returns where they close.
fn scan_body(src: &str, open: usize, found: &mut Vec<(usize, String)>) -> usize {
    let b = src.as_bytes();
    let mut depth = 0usize;
    let mut parens = 0i32;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'(' => parens += 1,
            b')' => parens -= 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = src[i..].find('\n').map_or(b.len(), |n| i + n);
                continue;
            }
            b'\'' => {
                // A char literal ('x', '\n'), not a lifetime.
                if let Some(len) = src[i + 1..].find('\'').filter(|&n| n <= 4) {
                    i += len + 2;
                    continue;
                }
            }
            b'"' => {
                let (text, after) = literal(src, i);
                // Markup's text: right after a tag, a block or another text.
                let node =
                    depth == 1 && parens == 0 && src[..i].trim_end().ends_with(['>', '"', '}']);
                if is_untranslated(&text, attribute_before(src, i), node) {
                    let line = src[..i].matches('\n').count() + 1;
                    found.push((line, text));
                }
                i = after;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// The literal starting at the quote `at`, and the index after it.
fn literal(src: &str, at: usize) -> (String, usize) {
    let b = src.as_bytes();
    let raw = at > 0 && (b[at - 1] == b'r' || b[at - 1] == b'#');
    let mut i = at + 1;
    while i < b.len() {
        if b[i] == b'\\' && !raw {
            i += 2;
            continue;
        }
        if b[i] == b'"' {
            let after = i + 1 + src[i + 1..].bytes().take_while(|c| *c == b'#').count();
            return (src[at + 1..i].to_string(), after);
        }
        i += 1;
    }
    (src[at + 1..].to_string(), b.len())
}

/// The attribute whose value starts at `at` (`title=` right before it).
fn attribute_before(src: &str, at: usize) -> Option<&str> {
    let mut before = src[..at].trim_end();
    // `style=format!("width: {w}%")`: the attribute of the format.
    if let Some(b) = before.strip_suffix("format!(") {
        before = b.trim_end();
    }
    let before = before.strip_suffix('=')?;
    if before.ends_with(['=', '!', '<', '>']) {
        return None;
    }
    let name_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':'))
        .map_or(0, |n| n + 1);
    Some(&before[name_start..])
}

fn is_untranslated(text: &str, attribute: Option<&str>, node: bool) -> bool {
    if ALLOWED.contains(&text) {
        return false;
    }
    // What a reader sees: the text without its `{arguments}` and brands.
    let mut shown = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            c if depth == 0 => shown.push(c),
            _ => {}
        }
    }
    for brand in BRANDS {
        shown = shown.replace(brand, "");
    }
    let text = shown.as_str();
    if !text.chars().any(char::is_alphabetic) {
        return false;
    }
    if node {
        return true;
    }
    if is_code(text) {
        return false;
    }
    match attribute {
        Some(name) => SHOWN.contains(&name.trim_start_matches("attr:")),
        None => {
            text.contains(' ')
                || text.starts_with(|c: char| c.is_uppercase())
                || text.chars().any(|c| c.is_alphabetic() && !c.is_ascii())
        }
    }
}

/// `CARGO_PKG_VERSION`, `chip chip-on`: a constant's name or CSS classes.
fn is_code(text: &str) -> bool {
    let constant = text
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    let classes = text.contains('-')
        && text.split(' ').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        });
    constant || classes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_texts_and_shown_attributes_only() {
        let src = r#"
            fn x() -> impl IntoView {
                let y = "Not in a view";
                view! {
                    <p class="muted" data-testid="a b">"Hello there"</p>
                    <span title="Full name">{t(Key::A)}</span>
                    <button on:click=move |_| go("done")>{move || if on { "Checking…" } else { "" }}</button>
                    <code>"batchboard user add"</code> " · " {format!("({n}) Batchboard")}
                    <b class=if on { "chip chip-on" } else { "chip" } style=format!("width: {w}%")>{env!("CARGO_PKG_VERSION")}</b>
                    <i aria-label=t(Key::B)>{tf(Key::C, &[("n", &n)])}</i>
                    <select><option value="any">"any"</option></select>
                    {move || view! { <b>"nested"</b> <i class="x y-z">{go("ok")}</i> }}
                }
            }
        "#;
        let found: Vec<String> = untranslated(src).into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            found,
            ["Hello there", "Full name", "Checking…", "any", "nested"]
        );
    }

    /// The check itself: no view in this crate shows untranslated text.
    #[test]
    fn every_view_text_is_translated() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut problems = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("strings_check.rs")
                {
                    let src = std::fs::read_to_string(&path).unwrap();
                    for (line, text) in untranslated(&src) {
                        problems.push(format!("{}:{line}: {text:?}", path.display()));
                    }
                }
            }
        }
        assert!(
            problems.is_empty(),
            "texts in views that do not go through crate::i18n (add a key to locales/en.toml and ko.toml):\n{}",
            problems.join("\n")
        );
    }
}
