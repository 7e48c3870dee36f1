//! Shared server state handed to routes and server functions.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::*;
use url::Url;

/// What every handler shares, behind one `Arc`: the router's layers and
/// each server function clone the state for every request, and a clone of
/// twenty fields was 4 % of a table page's CPU.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub leptos_options: LeptosOptions,
    /// Every upstream; calls on a batch or file go to the one its id names.
    pub upstreams: Arc<crate::providers::Upstreams>,
    pub data_dir: Arc<std::path::PathBuf>,
    pub db: crate::store::Db,
    pub auth: Arc<super::auth::Auth>,
    pub hub: Arc<super::events::Hub>,
    pub webhook: Option<Arc<Webhook>>,
    /// How many upstreams this replica polls (it holds their leases).
    pub polling: Arc<std::sync::atomic::AtomicUsize>,
    /// Batch prices for cost estimates.
    pub prices: Arc<batchboard_core::prices::PriceTable>,
    /// Monthly budgets per user and team (`--budgets-file`).
    pub budgets: Arc<crate::budgets::Budgets>,
    /// The metadata key naming a batch's team (`--team-key`).
    pub team_key: Arc<str>,
    /// Joined results of finished batches, recently read.
    pub results: Arc<crate::services::results::ResultsCache>,
    /// Who may read `/metrics`.
    pub metrics_allow: Arc<Vec<ipnet::IpNet>>,
    /// One permit per upload being received (`--max-uploads`).
    pub uploads: Arc<tokio::sync::Semaphore>,
    /// Pages rendered at once (`--max-renders`); the others wait in line.
    pub renders: Arc<crate::http::render::Turns>,
    /// How long a request body may stay silent.
    pub read_timeout: std::time::Duration,
    /// The filters' values, read from the index at most every few seconds
    /// (four scans of the index otherwise, on every page).
    pub facets: Arc<FacetsCache>,
    /// The table's pages, shared by viewers of a view until the next change.
    pub pages: Arc<crate::services::table::PageCache>,
    /// Results spools may take this much disk in all (`--spool-max-gb`).
    pub spool_max_bytes: u64,
    /// `/readyz`'s last probe of the upstream, for a few seconds.
    pub readiness: Arc<crate::http::health::ProbeCache>,
    /// Requests of each personal access token this minute, and how many
    /// it may make (`--token-requests-per-minute`).
    pub token_limits: Arc<crate::gateway::RateLimit>,
    pub token_rpm: u32,
    /// Spaces the `resync`s this replica announces.
    pub resync_gate: super::events::ResyncGate,
}

/// The last facets read, and the tables' match counts by filter, for a few
/// seconds or until the index changes: every page view of the table needs
/// both, and they change only with the index.
pub struct FacetsCache(
    crate::recent::Recent<batchboard_core::dashboard::Facets>,
    crate::recent::Recent<u64>,
);

impl Default for FacetsCache {
    fn default() -> Self {
        Self(
            crate::recent::Recent::new(Self::FRESH, 1),
            crate::recent::Recent::new(Self::FRESH, Self::COUNTS),
        )
    }
}

impl FacetsCache {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(5);
    /// Filters remembered at most (views of the table differ by filter).
    const COUNTS: usize = 256;

    /// How many batches match the filters named `key`: a cell holding the
    /// count if known, else an empty one for the caller to fill once it has
    /// counted. After [`FacetsCache::clear`] the cell is nobody's, so a count
    /// begun before a change was written (it may not include it) is not kept.
    pub fn count(&self, key: &str) -> std::sync::Arc<tokio::sync::OnceCell<u64>> {
        self.1.cell(key, 0)
    }

    /// The facets: remembered, or read with `read` (once for all callers
    /// that ask meanwhile).
    pub async fn get_or_read<E, Fut>(
        &self,
        read: impl FnOnce() -> Fut,
    ) -> Result<batchboard_core::dashboard::Facets, E>
    where
        Fut: std::future::Future<Output = Result<batchboard_core::dashboard::Facets, E>>,
    {
        self.0.get_or_read("", 0, read).await
    }

    pub fn clear(&self) {
        self.0.clear();
        self.1.clear();
    }
}

/// Posts a Slack-compatible message (`{"text": …}`) when a batch finishes.
pub struct Webhook {
    pub url: Url,
    /// Where the dashboard is reachable, for links in the message.
    pub public_url: Option<Url>,
    /// A client of its own: never the upstream's, which carries the key.
    pub http: reqwest::Client,
    /// The language of the message (`--webhook-locale`).
    pub i18n: batchboard_core::i18n::I18n,
    /// Signs each message (`--webhook-secret`), if set.
    pub secret: Option<secrecy::SecretString>,
    pub format: crate::config::WebhookFormat,
}

impl Webhook {
    pub fn message(&self, b: &batchboard_core::Batch) -> serde_json::Value {
        use batchboard_core::i18n::Key;
        let (c, l) = (&b.request_counts, &self.i18n);
        let who = b
            .metadata
            .as_ref()
            .and_then(|m| m.get(batchboard_core::CREATED_BY))
            .map(|n| l.f(Key::WebhookCreatedBy, &[("name", n)]))
            .unwrap_or_default();
        let link = self
            .public_url
            .as_ref()
            .map(|u| format!(" {}/batches/{}", u.as_str().trim_end_matches('/'), b.id))
            .unwrap_or_default();
        serde_json::json!({
            "text": l.f(Key::WebhookFinished, &[
                ("id", &b.id),
                ("status", &l.status(&b.status)),
                ("completed", &l.count(c.completed)),
                ("total", &l.count(c.total)),
                ("failed", &l.count(c.failed)),
                ("who", &who),
                ("link", &link),
            ]),
            "batch": {"id": b.id, "status": b.status.to_string(), "request_counts": c},
        })
    }

    /// An event like OpenAI's own webhooks send.
    pub fn event(&self, b: &batchboard_core::Batch) -> serde_json::Value {
        serde_json::json!({
            "object": "event",
            "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
            "type": format!("batch.{}", b.status),
            "created_at": crate::store::now(),
            "data": {"id": b.id},
        })
    }

    async fn send(&self, b: &batchboard_core::Batch) {
        let body = match self.format {
            crate::config::WebhookFormat::Slack => self.message(b),
            crate::config::WebhookFormat::Json => self.event(b),
        };
        self.post(body, &b.id).await
    }

    /// A budget that reached 80 % or 100 % of its month.
    pub async fn send_budget(&self, s: &batchboard_core::spend::BudgetStatus) {
        use batchboard_core::i18n::Key;
        let level = s.level();
        let body = match self.format {
            crate::config::WebhookFormat::Slack => serde_json::json!({
                "text": self.i18n.f(
                    if level >= 100 { Key::WebhookBudgetSpent } else { Key::WebhookBudgetWarning },
                    &[
                        ("scope", &self.i18n.t(s.scope.key())),
                        ("name", &s.name),
                        ("spent", &self.i18n.usd(s.spent_usd)),
                        ("limit", &self.i18n.usd(s.limit_usd)),
                        ("percent", &format!("{:.0}", s.percent())),
                        ("month", &s.month),
                    ],
                ),
                "budget": s,
            }),
            crate::config::WebhookFormat::Json => serde_json::json!({
                "object": "event",
                "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
                "type": if level >= 100 { "budget.exceeded" } else { "budget.warning" },
                "created_at": crate::store::now(),
                "data": s,
            }),
        };
        self.post(body, &format!("budget {}", s.name)).await
    }

    async fn post(&self, body: serde_json::Value, what: &str) {
        use secrecy::ExposeSecret;
        let body = body.to_string();
        let mut req = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            let (id, ts) = (
                format!("msg_{}", uuid::Uuid::new_v4().simple()),
                crate::store::now(),
            );
            if let Ok(sig) =
                crate::webhooks_in::sign(secret.expose_secret(), &id, ts, body.as_bytes())
            {
                req = req
                    .header("webhook-id", id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", sig);
            }
        }
        let r = req
            .body(body)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await;
        match r {
            Ok(resp) if resp.status().is_success() => {}
            Ok(resp) => tracing::warn!(status = %resp.status(), about = %what, "webhook refused"),
            Err(e) => tracing::warn!(error = %e.without_url(), about = %what, "webhook failed"),
        }
    }
}

impl AppState {
    /// One batch: from the index when it is there; otherwise (not yet seen
    /// by the watcher) from the upstream, and then indexed. The caller has
    /// checked the id.
    pub async fn batch(&self, id: &str) -> Result<batchboard_core::Batch, crate::http::HttpError> {
        if let Some(b) = self.db.get_indexed(id).await? {
            return Ok(b);
        }
        let (upstream, own) = self.upstreams.route(id)?;
        let b = upstream.qualify_batch(upstream.client.get_batch(own).await?);
        self.index(&b).await;
        Ok(b)
    }

    /// Writes a batch into the index and, when it changed, pushes it to
    /// every viewer (through Postgres to every replica) and, when it just
    /// finished, to the webhook. Failures are logged: the caller's request
    /// has already succeeded upstream.
    pub async fn index(&self, b: &batchboard_core::Batch) -> Option<crate::store::index::Upsert> {
        self.index_many(std::slice::from_ref(b))
            .await
            .pop()
            .flatten()
    }

    /// Tells every viewer to reload what it shows (through Postgres to
    /// every replica; alone, to this one's hub): for changes no single
    /// batch event says, many at once or a batch gone from the index.
    /// At most one per [`RESYNC_EVERY`](super::events::RESYNC_EVERY)
    /// ([`ResyncGate`](super::events::ResyncGate)): the others are folded
    /// into one sent when the window ends.
    pub async fn announce_resync(&self) {
        use super::events::Admit;
        match self.resync_gate.admit(std::time::Instant::now()) {
            Admit::Now => self.send_resync().await,
            Admit::Folded => {}
            Admit::At(at) => {
                let state = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    state.resync_gate.sent(std::time::Instant::now());
                    state.send_resync().await;
                });
            }
        }
    }

    async fn send_resync(&self) {
        match self.db.notify_resync().await {
            Ok(true) => {}
            Ok(false) => self.hub.send(super::events::Change::Resync),
            // This replica's viewers at least.
            Err(e) => {
                tracing::warn!(error = %e, "cannot notify other replicas");
                self.hub.send(super::events::Change::Resync);
            }
        }
    }

    /// [`AppState::index`] for many batches, in bulk transactions
    /// ([`Db::upsert_bulk`](crate::store::Db::upsert_bulk)). When more than
    /// [`RESYNC_AFTER`] of them changed, viewers are told once to reload
    /// instead of batch by batch. On a failed write every outcome is
    /// unknown (`None`); when the write was several transactions, some may
    /// have committed, and viewers are told to reload.
    pub async fn index_many(
        &self,
        batches: &[batchboard_core::Batch],
    ) -> Vec<Option<crate::store::index::Upsert>> {
        use crate::store::index::Upsert;
        use batchboard_core::dashboard::{BatchEvent, Change};
        let filled = self.with_local_metadata(batches).await;
        let batches: &[batchboard_core::Batch] = filled.as_deref().unwrap_or(batches);
        let items: Vec<_> = batches.iter().map(|b| (b, None)).collect();
        let outcomes = match self
            .db
            .upsert_bulk(&items, super::watcher::next_check)
            .await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, batches = batches.len(), "cannot write the index");
                if !self.db.bulk_is_atomic(batches.len()) {
                    self.facets.clear();
                    self.announce_resync().await;
                }
                return vec![None; batches.len()];
            }
        };
        let changes: Vec<(&batchboard_core::Batch, Change)> = batches
            .iter()
            .zip(&outcomes)
            .filter_map(|(b, outcome)| match outcome {
                Upsert::Unchanged => None,
                Upsert::New => Some((b, Change::New)),
                Upsert::Changed { was } if *was != b.status => Some((b, Change::Status)),
                Upsert::Changed { .. } => Some((b, Change::Progress)),
            })
            .collect();
        // What the table counts and offers to filter by follows new batches
        // and statuses; progress alone changes neither (a running batch
        // would otherwise make every page count again).
        if changes.iter().any(|(_, c)| *c != Change::Progress) {
            self.facets.clear();
        }
        if changes.len() > RESYNC_AFTER {
            self.announce_resync().await;
        } else {
            // Replicas (Postgres) hear of it through the database, this
            // one included; alone (SQLite), the hub is told directly.
            for (b, change) in &changes {
                match self.db.notify_change(&b.id, *change).await {
                    Ok(true) => {}
                    Ok(false) => {
                        self.hub
                            .send(super::events::Change::Batch(Box::new(BatchEvent {
                                batch: (*b).clone(),
                                change: *change,
                                cost_usd: crate::services::spend::row_cost(self, b),
                            })))
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot notify other replicas"),
                }
            }
        }
        for (b, outcome) in batches.iter().zip(&outcomes) {
            let finished = matches!(outcome, Upsert::Changed { was } if !was.is_terminal())
                && b.status.is_terminal();
            if let (true, Some(hook)) = (finished, &self.webhook) {
                let (hook, b) = (hook.clone(), b.clone());
                tokio::spawn(async move { hook.send(&b).await });
            }
            // Its final cost may take a budget over a warning level.
            if finished {
                let (state, b) = (self.clone(), b.clone());
                tokio::spawn(async move {
                    let user = b
                        .metadata
                        .as_ref()
                        .and_then(|m| m.get(batchboard_core::CREATED_BY));
                    crate::services::spend::alert(
                        &state,
                        user.map(String::as_str),
                        b.metadata.as_ref(),
                    )
                    .await
                });
            }
        }
        outcomes.into_iter().map(Some).collect()
    }

    /// `batches` with the metadata Batchboard kept for those whose upstream
    /// keeps none (message batches); `None` when no batch needs any.
    async fn with_local_metadata(
        &self,
        batches: &[batchboard_core::Batch],
    ) -> Option<Vec<batchboard_core::Batch>> {
        use batchboard_core::dashboard::split_qualified;
        // Looked up once per call, not per batch: the watcher indexes pages
        // of a hundred.
        let without: Vec<String> = self
            .upstreams
            .all()
            .iter()
            .filter(|u| u.kind().message_batches())
            .map(|u| u.name.clone())
            .collect();
        if without.is_empty() {
            return None;
        }
        let needs: Vec<&str> = batches
            .iter()
            .filter(|b| b.metadata.is_none())
            .filter(|b| without.iter().any(|n| n == split_qualified(&b.id).0))
            .map(|b| b.id.as_str())
            .collect();
        if needs.is_empty() {
            return None;
        }
        let kept = match self.db.local_metadata(&needs).await {
            Ok(k) if !k.is_empty() => k,
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read kept metadata");
                return None;
            }
        };
        Some(
            batches
                .iter()
                .map(|b| {
                    let mut b = b.clone();
                    if b.metadata.is_none() {
                        b.metadata = kept.get(&b.id).cloned();
                    }
                    b
                })
                .collect(),
        )
    }

    /// Appends to the audit log. A failed write is logged (the action it
    /// records has already happened) but does not fail the request.
    pub async fn audit(&self, a: crate::store::Audit<'_>) {
        let action = a.action.to_string();
        if let Err(e) = self.db.audit(a).await {
            tracing::error!(error = %e, action, "cannot write the audit log");
        }
    }
}

/// Changed batches in one write from which viewers are told to reload
/// once rather than sent each (a first sync, a long outage caught up).
pub const RESYNC_AFTER: usize = 20;

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use batchboard_core::i18n::I18n;

    fn hook(locale: &str) -> Webhook {
        Webhook {
            url: Url::parse("http://127.0.0.1:9/hook").unwrap(),
            public_url: Url::parse("https://board.example/").ok(),
            http: reqwest::Client::new(),
            i18n: I18n::get(locale),
            secret: None,
            format: crate::config::WebhookFormat::Slack,
        }
    }

    /// A count made while the index changed (asked before the counts were
    /// forgotten, finished after) is not remembered; one made since is.
    #[test]
    fn a_count_begun_before_a_change_is_not_kept() {
        let cache = FacetsCache::default();
        let counting = cache.count("status=running");
        assert_eq!(counting.get(), None);
        cache.clear();
        let _ = counting.set(4);
        let counting = cache.count("status=running");
        assert_eq!(counting.get(), None, "a count from before the change");
        let _ = counting.set(5);
        assert_eq!(cache.count("status=running").get(), Some(&5));
    }

    #[test]
    fn the_webhook_speaks_its_configured_language() {
        let mut b = batchboard_core::Batch {
            id: "batch_1".into(),
            status: batchboard_core::BatchStatus::Completed,
            ..Default::default()
        };
        b.request_counts.total = 1200;
        b.request_counts.completed = 1199;
        b.request_counts.failed = 1;
        b.metadata = Some(
            [("created_by".to_string(), "ana".to_string())]
                .into_iter()
                .collect(),
        );
        assert_eq!(
            hook("en").message(&b)["text"],
            "Batch batch_1 completed: 1,199 of 1,200 requests completed, 1 failed (created by ana). https://board.example/batches/batch_1"
        );
        assert_eq!(
            hook("ko").message(&b)["text"],
            "배치 batch_1 완료: 요청 1,200건 중 1,199건 완료, 1건 실패 (ana 님이 만듦). https://board.example/batches/batch_1"
        );
        // Machine fields stay as the API has them.
        assert_eq!(hook("ko").message(&b)["batch"]["status"], "completed");
    }
}
