//! The one translation layer: every string a user reads goes through it.
//!
//! The texts are in `locales/<code>.toml` at the workspace root, one file per
//! language; `en.toml` is the source and names every key (the build turns
//! its keys into [`Key`]). The server holds every table; a browser gets only
//! its reader's table, in the page ([`I18n::from_table`]), and carries
//! English as the fallback for a key a translation lacks.
//!
//! Texts take arguments as `{name}`. Numbers, money, sizes, durations and
//! times are formatted with the locale's own `format.*` and `time.*` texts.

mod format;

pub use format::utc;

use std::fmt::Display;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

include!(concat!(env!("OUT_DIR"), "/i18n_keys.rs"));

impl Key {
    /// The key as written in the files: `nav.batches`.
    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Key> {
        NAMES.iter().position(|n| *n == name).map(|i| ALL[i])
    }

    pub fn all() -> &'static [Key] {
        &ALL
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Key::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown text key '{name}'")))
    }
}

/// A text to show, not yet in a language: its key and arguments. Errors
/// and validation problems carry one, so each reader sees them in their
/// own language; `Display` is the English text (for logs and scripts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msg {
    pub key: Key,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<(String, String)>,
    /// Arguments that are texts themselves (a role, a status), put in the
    /// reader's language too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub texts: Vec<(String, Key)>,
    /// For a count: the text when `{n}` is one (in languages with a
    /// singular); `key` is the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one: Option<Key>,
}

impl Msg {
    pub fn new(key: Key) -> Self {
        Self {
            key,
            args: Vec::new(),
            texts: Vec::new(),
            one: None,
        }
    }

    /// `one` or `other` by the count `n` (its argument `{n}`), chosen in
    /// the reader's language.
    pub fn counted(one: Key, other: Key, n: u64) -> Self {
        let mut m = Self::new(other).arg("n", n);
        m.one = Some(one);
        m
    }

    /// Adds the argument `{name}`: the text of `key`, in the reader's
    /// language.
    pub fn arg_text(mut self, name: &str, key: Key) -> Self {
        self.texts.push((name.to_owned(), key));
        self
    }

    /// A text that has no translation (the upstream's own words, a name):
    /// shown as it is in every language.
    pub fn text(text: impl Display) -> Self {
        Self::new(Key::CommonText).arg("text", text)
    }

    /// Adds the argument `{name}`.
    pub fn arg(mut self, name: &str, value: impl Display) -> Self {
        self.args.push((name.to_owned(), value.to_string()));
        self
    }
}

impl Display for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&I18n::english().msg(self))
    }
}

/// One language's texts. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct I18n {
    code: &'static str,
    /// In key order; `None` (or a table too short) falls back to English.
    table: &'static [Option<&'static str>],
}

impl Default for I18n {
    fn default() -> Self {
        Self::english()
    }
}

impl I18n {
    pub fn english() -> Self {
        Self {
            code: "en",
            table: &[],
        }
    }

    /// The locale `code` (one of [`LOCALES`]), else English.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn get(code: &str) -> Self {
        TABLES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(code, table)| Self {
                code,
                table: &table[..],
            })
            .unwrap_or_default()
    }

    /// A locale's table as the page carries it to the browser.
    pub fn table(&self) -> Vec<Option<&'static str>> {
        ALL.iter()
            .map(|k| self.table.get(*k as usize).copied().flatten())
            .collect()
    }

    /// The locale the server sent, from its [`table`](Self::table). Kept
    /// for the life of the page (made once per page load).
    pub fn from_table(code: &str, table: Vec<Option<String>>) -> Self {
        let code = supported(code).unwrap_or("en");
        let table: Vec<Option<&'static str>> = table
            .into_iter()
            .map(|s| s.map(|s| &*Box::leak(s.into_boxed_str())))
            .collect();
        Self {
            code,
            table: Box::leak(table.into_boxed_slice()),
        }
    }

    /// The locale's code (`en`, `ko`): for `<html lang>` and `Intl`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The text of `key`, without arguments.
    pub fn t(&self, key: Key) -> &'static str {
        self.table
            .get(key as usize)
            .copied()
            .flatten()
            .unwrap_or(EN[key as usize])
    }

    /// The text of `key` with its `{name}` arguments filled in.
    pub fn f(&self, key: Key, args: &[(&str, &dyn Display)]) -> String {
        fill(self.t(key), |name| {
            args.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    /// A [`Msg`] in this language.
    pub fn msg(&self, m: &Msg) -> String {
        let arg = |name: &str| {
            m.args
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let key = match m.one {
            Some(one) if arg("n") == Some("1") && self.t(Key::MetaPlural) == "one_other" => one,
            _ => m.key,
        };
        fill(self.t(key), |name| {
            let text = m.texts.iter().find(|(n, _)| n == name);
            match (arg(name), text) {
                // A count, grouped the locale's way.
                (Some(v), _) if name == "n" && m.one.is_some() => Some(
                    v.parse::<u64>()
                        .map(|n| self.count(n))
                        .unwrap_or_else(|_| v.to_owned()),
                ),
                (Some(v), _) => Some(v.to_owned()),
                (None, Some((_, k))) => Some(self.t(*k).to_owned()),
                (None, None) => None,
            }
        })
    }

    /// The key of a role's name.
    pub fn role_key(role: crate::access::Role) -> Key {
        use crate::access::Role as R;
        match role {
            R::Viewer => Key::RoleViewer,
            R::Operator => Key::RoleOperator,
            R::Admin => Key::RoleAdmin,
        }
    }

    /// The key of a status's name (none for a status this version does
    /// not know).
    pub fn status_key(s: &crate::BatchStatus) -> Option<Key> {
        use crate::BatchStatus as S;
        Some(match s {
            S::Validating => Key::StatusValidating,
            S::Failed => Key::StatusFailed,
            S::InProgress => Key::StatusInProgress,
            S::Finalizing => Key::StatusFinalizing,
            S::Completed => Key::StatusCompleted,
            S::Expired => Key::StatusExpired,
            S::Cancelling => Key::StatusCancelling,
            S::Cancelled => Key::StatusCancelled,
            S::Other(_) => return None,
        })
    }

    /// A batch status in words (an unknown status as itself).
    pub fn status(&self, s: &crate::BatchStatus) -> String {
        match Self::status_key(s) {
            Some(k) => self.t(k).to_owned(),
            None => s.to_string(),
        }
    }

    /// `one` or `other` for the count `n` (by the locale's `meta.plural`:
    /// `one_other` as English, or `other` for languages without plurals),
    /// with `{n}` filled in, formatted.
    pub fn plural(&self, one: Key, other: Key, n: u64) -> String {
        let key = if n == 1 && self.t(Key::MetaPlural) == "one_other" {
            one
        } else {
            other
        };
        self.f(key, &[("n", &self.count(n))])
    }
}

/// Replaces each `{name}` in `text`; an unknown name stays as written.
fn fill(text: &str, arg: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| (close, arg(&after[..close]))) {
            Some((close, Some(value))) => {
                out.push_str(&value);
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reads an optional [`Msg`] leniently: a text this build does not know
/// (a tab opened before an upgrade renamed it) is `None`, and the English
/// `message` beside it is shown instead of failing the whole answer.
pub fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Msg>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

/// The best of [`LOCALES`] for an `Accept-Language` header (weights
/// respected, `ko-KR` matching `ko`), or English.
pub fn negotiate(accept_language: &str) -> &'static str {
    let mut best: Option<(f32, &'static str)> = None;
    for part in accept_language.split(',') {
        let mut pieces = part.trim().split(';');
        let tag = pieces.next().unwrap_or("").trim();
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        if let Some(code) = supported(&primary) {
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, code));
            }
        }
    }
    best.map(|(_, c)| c).unwrap_or("en")
}

/// `code` if it is one of [`LOCALES`].
pub fn supported(code: &str) -> Option<&'static str> {
    LOCALES.iter().map(|(c, _)| *c).find(|c| *c == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_arguments_and_keeps_unknown_braces() {
        assert_eq!(
            fill("line {line}: {x}", |n| (n == "line").then(|| "3".into())),
            "line 3: {x}"
        );
        assert_eq!(fill("{a}{a}", |_| Some("z".into())), "zz");
        assert_eq!(fill("open { only", |_| None), "open { only");
    }

    #[test]
    fn negotiates_by_weight_and_primary_tag() {
        assert_eq!(negotiate("ko-KR,ko;q=0.9,en-US;q=0.8"), "ko");
        assert_eq!(negotiate("en-US,en;q=0.9,ko;q=0.8"), "en");
        assert_eq!(negotiate("fr-FR, ko;q=0.5"), "ko");
        assert_eq!(negotiate("fr"), "en");
        assert_eq!(negotiate(""), "en");
        assert_eq!(negotiate("ko;q=0"), "en");
    }

    #[test]
    fn keys_round_trip_and_korean_differs() {
        for k in Key::all() {
            assert_eq!(Key::from_name(k.name()), Some(*k));
        }
        let ko = I18n::get("ko");
        assert_eq!(ko.code(), "ko");
        assert_ne!(ko.t(Key::MetaName), I18n::english().t(Key::MetaName));
        assert_eq!(I18n::get("xx").code(), "en");
        let m = Msg::new(Key::MetaName);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Msg>(&json).unwrap(), m);
    }

    #[test]
    fn counted_and_texts_read_in_the_readers_language() {
        let (en, ko) = (I18n::english(), I18n::get("ko"));
        let one = Msg::counted(Key::CommonRequestsOne, Key::CommonRequestsOther, 1);
        let many = Msg::counted(Key::CommonRequestsOne, Key::CommonRequestsOther, 1200);
        assert_eq!(en.msg(&one), "1 request");
        assert_eq!(en.msg(&many), "1,200 requests");
        assert_eq!(ko.msg(&many), "요청 1,200건");
        let m = Msg::new(Key::LoginNeedsRole)
            .arg_text("role", I18n::role_key(crate::access::Role::Admin))
            .arg_text("have", Key::RoleViewer);
        assert!(
            ko.msg(&m).starts_with("관리자 역할이 필요합니다"),
            "{}",
            ko.msg(&m)
        );
        assert!(
            m.to_string().starts_with("This needs the admin role"),
            "{m}"
        );
        // A key this build does not know: no text, not a failure.
        #[derive(Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "lenient")]
            msg: Option<Msg>,
        }
        let b: Body = serde_json::from_str(r#"{"msg":{"key":"no.such_key"}}"#).unwrap();
        assert!(b.msg.is_none());
        let sent = serde_json::to_string(&one).unwrap();
        let b: Body = serde_json::from_str(&format!(r#"{{"msg":{sent}}}"#)).unwrap();
        assert_eq!(b.msg, Some(one));
    }

    #[test]
    fn a_table_sent_to_the_browser_reads_the_same() {
        let ko = I18n::get("ko");
        let sent: Vec<Option<String>> = ko
            .table()
            .into_iter()
            .map(|s| s.map(String::from))
            .collect();
        let back = I18n::from_table("ko", sent);
        for k in Key::all() {
            assert_eq!(back.t(*k), ko.t(*k));
        }
    }
}
