//! Who is signed in and what they may do, as the server and the browser
//! both see it, and the audit log's entries.

use serde::{Deserialize, Serialize};

/// What a signed-in person may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Role {
    /// See batches and download results.
    Viewer,
    /// Also create and cancel batches.
    Operator,
    /// Also read the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The person behind a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub name: String,
    pub role: Role,
    /// Signed in by the reverse proxy (signing out is the proxy's business).
    #[serde(default)]
    pub via_proxy: bool,
}

impl CurrentUser {
    pub fn may(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// Where to go after signing in: only paths of this site, else the table.
/// Used by the server and by the sign-in page.
///
/// A path of this site starts with one `/` and holds no backslash (browsers
/// read `\\` as `/`), no whitespace and no control character (browsers drop
/// tabs and newlines from a URL, so `/\t/evil.example` would become
/// `//evil.example`, another host; a newline has no place in a header).
pub fn safe_next(next: &str) -> &str {
    let same_site = next.starts_with('/')
        && !next.starts_with("//")
        && !next
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control());
    if same_site {
        next
    } else {
        "/"
    }
}

/// The sign-in page, returning to `next` afterwards.
pub fn sign_in_path(next: &str) -> String {
    let mut query = form_urlencoded::Serializer::for_suffix(String::from("/login?"), 7);
    query.append_pair("next", safe_next(next));
    query.finish()
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub ip: Option<String>,
    /// `detail` untranslated, when Batchboard worded it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::i18n::lenient"
    )]
    pub detail_msg: Option<crate::i18n::Msg>,
}

/// The actions the audit log records, for the filter.
pub const AUDIT_ACTIONS: &[&str] = &[
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "create",
    "cancel",
    "download",
    "denied",
    "end_session",
    "delete",
    "api_read",
    "create_token",
    "revoke_token",
    "set_budget",
    "budget_override",
];

/// A signed-in session, as an admin sees it (never its id: `handle` names
/// it for "end session" and is worth nothing as a credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub handle: String,
    pub user: String,
    /// The address it signed in from.
    pub address: Option<String>,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds, to the minute.
    pub last_seen_at: i64,
    /// The session asking.
    #[serde(default)]
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Cursor for older entries, when there are more.
    pub next_before: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_path_returns_to_a_path_of_this_site_only() {
        assert_eq!(
            sign_in_path("/batches/new?x=1"),
            "/login?next=%2Fbatches%2Fnew%3Fx%3D1"
        );
        assert_eq!(sign_in_path("//evil.example"), "/login?next=%2F");
    }

    #[test]
    fn next_is_a_path_of_this_site_or_the_table() {
        assert_eq!(
            safe_next("/batches/x?status=failed"),
            "/batches/x?status=failed"
        );
        for other in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/a\\..\\..\\/evil",
            "/\u{0}x",
            "https://evil.example",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(other), "/", "{other:?}");
        }
    }
}

/// A personal access token as its owner (or an admin) sees it: never the
/// secret, which is shown once when it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The public part (`bb_<id>_…`).
    pub id: String,
    pub user: String,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    /// Its default upstream (`None`: the first).
    #[serde(default)]
    pub upstream: Option<String>,
}

/// A token just made: its one showing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub token: String,
    pub info: TokenInfo,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Viewer, Self::Operator, Self::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}
