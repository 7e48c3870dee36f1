//! What the dashboard's browser side and server exchange besides the Batch
//! API's own objects: the table's query and page, filters, the watcher's
//! status, which upstream is in use.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::i18n::{Key, Msg};
use crate::Batch;

/// Which upstream the dashboard talks to, as the browser may know it: the
/// base URL, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpstreamInfo {
    /// The built-in sandbox (no key and no upstream URL configured).
    Sandbox,
    /// An OpenAI-compatible API at this base URL.
    Remote { base_url: String },
}

/// The result of asking the upstream whether it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    pub ok: bool,
    /// What happened, in words a user can act on (English).
    pub detail: String,
    pub latency_ms: u64,
    /// `detail` untranslated, when Batchboard worded it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::i18n::lenient"
    )]
    pub msg: Option<crate::i18n::Msg>,
}

/// What a change did to a batch, as the event stream tells the pages
/// (`change` beside the batch's own fields in a `batch` event): whether it
/// can move the batch into, out of or within a view of the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// New to the index.
    New,
    /// Its status changed.
    Status,
    /// Anything else: request counts, timestamps.
    Progress,
    /// Not said (a replica of an older version): it may move anything.
    #[default]
    #[serde(other)]
    Unknown,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Status => "status",
            Change::Progress => "progress",
            Change::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Self {
        [Change::New, Change::Status, Change::Progress]
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or_default()
    }
}

/// A `batch` event: the batch as the index now holds it, what changed, and
/// what it cost by its usage (the table's Cost cell; the browser has no
/// price tables).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchEvent {
    #[serde(flatten)]
    pub batch: Batch,
    #[serde(default)]
    pub change: Change,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// What the batch table asks for: filters, search, sort and page. Every
/// field is optional; the URL's query string holds the same names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchQuery {
    /// Statuses, comma-separated (`in_progress,finalizing`).
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// Who created it (`metadata.created_by`).
    #[serde(default)]
    pub creator: Option<String>,
    /// Which upstream, by its shown name (`default` for the first).
    #[serde(default)]
    pub upstream: Option<String>,
    /// A metadata key; with `meta_value`, that pair.
    #[serde(default)]
    pub meta_key: Option<String>,
    #[serde(default)]
    pub meta_value: Option<String>,
    /// Created on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub from: Option<String>,
    /// Created on or before this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub to: Option<String>,
    /// Part of a batch id, file id or input file name.
    #[serde(default)]
    pub q: Option<String>,
    /// `created` (default), `status`, `endpoint`, `model` or `creator`.
    #[serde(default)]
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    #[serde(default)]
    pub dir: Option<String>,
    #[serde(default)]
    pub offset: Option<u32>,
    #[serde(default)]
    pub limit: Option<u32>,
}

impl BatchQuery {
    /// The filters alone (not the sort or the page), as one string: views
    /// with the same key match the same batches.
    pub fn filter_key(&self) -> String {
        let f = |v: &Option<String>| v.as_deref().unwrap_or("").trim().to_owned();
        [
            f(&self.status),
            f(&self.endpoint),
            f(&self.model),
            f(&self.creator),
            f(&self.meta_key),
            f(&self.meta_value),
            f(&self.from),
            f(&self.to),
            f(&self.q),
            f(&self.upstream),
        ]
        .join("\u{1f}")
    }
}

pub const SORT_KEYS: &[&str] = &["created", "status", "endpoint", "model", "creator"];

impl BatchQuery {
    /// The same query as URL parameters (empty ones left out), for links.
    pub fn to_query_string(&self) -> String {
        let pairs: [(&str, Option<String>); 14] = [
            ("upstream", self.upstream.clone()),
            ("status", self.status.clone()),
            ("endpoint", self.endpoint.clone()),
            ("model", self.model.clone()),
            ("creator", self.creator.clone()),
            ("meta_key", self.meta_key.clone()),
            ("meta_value", self.meta_value.clone()),
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("q", self.q.clone()),
            ("sort", self.sort.clone()),
            ("dir", self.dir.clone()),
            (
                "offset",
                self.offset.filter(|o| *o > 0).map(|o| o.to_string()),
            ),
            ("limit", self.limit.map(|l| l.to_string())),
        ];
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                out.append_pair(k, &v);
            }
        }
        let out = out.finish();
        if out.is_empty() {
            out
        } else {
            format!("?{out}")
        }
    }

    /// Whether any filter or search is set (sort and page aside).
    /// Whether `change` can alter which rows this view shows, or how many
    /// match: then the page reloads. Otherwise a row it shows is updated in
    /// place, and a change to a batch it does not show is no concern of it.
    /// Only a status changes among the fields views filter and sort on
    /// (the search also reads the output and error files' ids, which come
    /// with a status change); a new batch can land on any view.
    pub fn reshaped_by(&self, change: Change) -> bool {
        match change {
            Change::New | Change::Unknown => true,
            Change::Status => {
                self.status.is_some() || self.q.is_some() || self.sort.as_deref() == Some("status")
            }
            Change::Progress => false,
        }
    }

    pub fn is_filtered(&self) -> bool {
        [
            &self.upstream,
            &self.status,
            &self.endpoint,
            &self.model,
            &self.creator,
            &self.meta_key,
            &self.meta_value,
            &self.from,
            &self.to,
            &self.q,
        ]
        .iter()
        .any(|f| f.as_deref().is_some_and(|v| !v.is_empty()))
    }
}

/// How current the index is: what the pages say about the upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherStatus {
    /// When the watcher last heard from the upstream (unix seconds); with
    /// several, the one heard from longest ago (`None` until all have been).
    pub last_success_at: Option<i64>,
    /// The last failure, if it came after the last success.
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// Batches not yet in a final state.
    pub running: i64,
    /// Each upstream's own, in the configured order.
    #[serde(default)]
    pub upstreams: Vec<UpstreamHealth>,
}

/// How the watcher fares with one upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamHealth {
    /// `""` for the first upstream (named by the flags, or the sandbox).
    pub name: String,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub running: i64,
}

impl UpstreamHealth {
    /// The name shown for it: the first upstream's is `default`.
    pub fn display_name(&self) -> &str {
        display_upstream(&self.name)
    }
}

/// An upstream as the pages see it (never its key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamView {
    /// Its shown name (`default` for the first).
    pub name: String,
    /// `openai`, `azure`, `groq`, `together`, `anthropic`, `openai-compatible`.
    pub kind: String,
    /// Where it is; `None` for the built-in sandbox.
    pub base_url: Option<String>,
    /// Whether the signed-in user's role may create batches there.
    pub may_create: bool,
    /// What it accepts: limits, windows, endpoints, deployments.
    pub offer: crate::limits::Offer,
    /// Message batches (Anthropic): lines are converted, not uploaded.
    #[serde(default)]
    pub message_batches: bool,
}

/// How an upstream's name is shown: the first upstream's (`""`) as `default`.
pub fn display_upstream(name: &str) -> &str {
    if name.is_empty() {
        "default"
    } else {
        name
    }
}

/// A row of the batch table: what its cells show of a batch (the page
/// carries these, not whole batches, to keep its hydration data small), and
/// the batch's cost by its usage, priced on the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableRow {
    pub id: String,
    pub status: crate::BatchStatus,
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    pub request_counts: crate::RequestCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<crate::Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl TableRow {
    pub fn of(b: &Batch, cost_usd: Option<f64>) -> Self {
        Self {
            id: b.id.clone(),
            status: b.status.clone(),
            endpoint: b.endpoint.clone(),
            model: b.model.clone(),
            created_at: b.created_at,
            expires_at: b.expires_at,
            request_counts: b.request_counts.clone(),
            metadata: b.metadata.clone(),
            cost_usd,
        }
    }
}

impl From<&BatchEvent> for TableRow {
    fn from(ev: &BatchEvent) -> Self {
        Self::of(&ev.batch, ev.cost_usd)
    }
}

/// A page of the batch table, read from the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchPage {
    pub batches: Vec<TableRow>,
    /// Rows matching the query, over all pages.
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
    pub watcher: WatcherStatus,
}

/// The values the filters offer, from the index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facets {
    pub statuses: Vec<String>,
    pub endpoints: Vec<String>,
    pub models: Vec<String>,
    pub creators: Vec<String>,
    /// The upstreams' shown names, when there are several.
    #[serde(default)]
    pub upstreams: Vec<String>,
}

pub const PAGE_SIZES: &[u32] = &[10, 20, 50, 100];

/// The most rows one page of the batch table may ask for.
pub const MAX_TABLE_PAGE: u32 = 200;

/// Between an upstream's name and its own id, in the dashboard's ids of
/// batches and files of upstreams other than the first: `azure-eu.batch_1`.
/// No provider's ids contain it, and upstream names cannot.
pub const UPSTREAM_SEPARATOR: char = '.';

/// The dashboard's id of `id` at the upstream named `upstream` (`""`, the
/// first upstream, keeps its ids as they are).
pub fn qualified(upstream: &str, id: &str) -> String {
    if upstream.is_empty() {
        id.to_owned()
    } else {
        format!("{upstream}{UPSTREAM_SEPARATOR}{id}")
    }
}

/// The upstream's name (`""` for the first upstream) and its own id.
pub fn split_qualified(id: &str) -> (&str, &str) {
    id.split_once(UPSTREAM_SEPARATOR).unwrap_or(("", id))
}

/// A batch or file id (`what`) as the upstream makes them, perhaps after
/// an upstream's name ([`qualified`]): one path segment, no surprises.
pub fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let ok = id.len() <= 160
        && match id.split_once(UPSTREAM_SEPARATOR) {
            Some((upstream, own)) => plain(upstream) && plain(own),
            None => plain(id),
        };
    if ok {
        Ok(())
    } else {
        let msg = match what {
            "batch" => Msg::new(Key::ProblemNotBatchId),
            "file" => Msg::new(Key::ProblemNotFileId),
            _ => Msg::new(Key::ProblemNotAnId).arg("what", what),
        };
        Err(ApiError::Invalid(msg.arg("id", id)))
    }
}

/// The largest sample `count_tokens` takes (the validator keeps 256 KiB).
pub const MAX_SAMPLE_BYTES: usize = crate::validate::SAMPLE_BYTES + 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCount {
    pub tokens: u64,
    pub encoding: String,
}

/// The metadata key that links a retry batch to the batch it retries.
pub const RETRY_OF: &str = "retry_of";
