//! The upstreams this server talks to: the one the flags describe (or the
//! built-in sandbox), named `""` and shown as `default`, whose ids are kept
//! as the upstream makes them; then those of the upstreams file, each with
//! ids `name.id` in the dashboard ([`batchboard_core::dashboard::qualified`]),
//! so that ids from two upstreams never collide. Every call on a batch or
//! file goes to the upstream its id names ([`Upstreams::route`]).

use std::sync::Arc;
use std::time::Instant;

use secrecy::SecretString;
use url::Url;

use super::config::{ServeArgs, OPENAI_BASE_URL};
use super::upstreams::{Limits, UpstreamConfig};
use batchboard_core::access::Role;
use batchboard_core::dashboard::{qualified, split_qualified, Reachability, UpstreamInfo};
use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::limits::Offer;
use batchboard_core::Batch;
use batchboard_upstream::dialect::Kind;
use batchboard_upstream::provider::Access;
use batchboard_upstream::{Client, Policy, UpstreamError};

/// One upstream API.
pub struct Upstream {
    /// `""` for the first upstream; the upstreams file's name otherwise.
    pub name: String,
    pub client: Client,
    sandbox: bool,
    /// Who may create batches here.
    pub create_roles: Vec<Role>,
    /// What a batch here may be: limits, windows, endpoints, deployments.
    pub offer: Offer,
    /// The `whsec_…` secret its webhooks are signed with, if it sends any.
    pub webhook_secret: Option<SecretString>,
    /// Its own price table, if it has one.
    pub prices: Option<Arc<batchboard_core::prices::PriceTable>>,
}

/// The offer of an upstream of `kind`: its configured `limits` over the
/// kind's defaults.
fn offer(kind: Kind, limits: &Limits, deployments: &[String]) -> Offer {
    Offer {
        max_requests: limits.max_requests,
        max_bytes: limits.max_bytes,
        windows: limits
            .completion_windows
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| vec!["24h".into()]),
        endpoints: limits
            .endpoints
            .clone()
            .unwrap_or_else(|| kind.endpoints().iter().map(|e| e.to_string()).collect()),
        deployments: deployments.to_vec(),
        enqueued_tokens: limits.enqueued_tokens.clone(),
    }
}

/// Timeouts and retries of upstream calls, as configured.
fn policy(args: &ServeArgs) -> Policy {
    Policy {
        call_timeout: std::time::Duration::from_millis(args.upstream_timeout_ms),
        retries: args.upstream_retries,
        ..Policy::default()
    }
}

fn observed(client: Client, args: &ServeArgs) -> Client {
    client
        .with_policy(policy(args))
        .with_observer(Arc::new(crate::metrics::UpstreamMetrics))
}

impl Upstream {
    fn first(client: Client, sandbox: bool) -> Self {
        Self {
            name: String::new(),
            offer: offer(client.kind(), &Limits::default(), &[]),
            client,
            sandbox,
            create_roles: vec![Role::Operator, Role::Admin],
            webhook_secret: None,
            prices: None,
        }
    }

    /// The upstream the arguments name: `--upstream-url`, or OpenAI when
    /// only a key is given. `None` when neither is set.
    pub fn from_args(args: &ServeArgs) -> Result<Option<Self>, UpstreamError> {
        let base_url = match (&args.upstream_url, &args.api_key) {
            (Some(url), _) => url.clone(),
            (None, Some(_)) => Url::parse(OPENAI_BASE_URL).expect("constant URL"),
            (None, None) => return Ok(None),
        };
        let client = Client::new(
            base_url,
            args.api_key.as_ref(),
            args.organization.as_deref(),
            args.project.as_deref(),
        )?;
        let mut first = Self::first(observed(client, args), false);
        first.webhook_secret = args.upstream_webhook_secret.clone();
        Ok(Some(first))
    }

    /// The built-in sandbox at `base_url`.
    pub fn sandbox(
        base_url: Url,
        key: &SecretString,
        args: &ServeArgs,
    ) -> Result<Self, UpstreamError> {
        let client = Client::new(base_url, Some(key), None, None)?;
        let mut first = Self::first(observed(client, args), true);
        first.webhook_secret = args.upstream_webhook_secret.clone();
        Ok(first)
    }

    /// One upstream of the upstreams file.
    pub fn from_config(c: &UpstreamConfig, args: &ServeArgs) -> Result<Self, UpstreamError> {
        let client = Client::connect(Access {
            kind: c.kind,
            base: &c.base_url,
            key: c.key.as_ref(),
            organization: c.organization.as_deref(),
            project: c.project.as_deref(),
            api_version: c.api_version.as_deref(),
        })?;
        Ok(Self {
            name: c.name.clone(),
            client: observed(client, args),
            sandbox: false,
            create_roles: c.create_roles.clone(),
            offer: offer(c.kind, &c.limits, &c.deployments),
            webhook_secret: c.webhook_secret.clone(),
            prices: c.prices.clone().map(Arc::new),
        })
    }

    pub fn kind(&self) -> Kind {
        self.client.kind()
    }

    /// How it is shown: `default` for the first.
    pub fn display_name(&self) -> &str {
        batchboard_core::dashboard::display_upstream(&self.name)
    }

    /// The dashboard's id of one of this upstream's ids.
    pub fn qualify(&self, id: &str) -> String {
        qualified(&self.name, id)
    }

    /// A batch as this upstream sent it, with the dashboard's ids for it
    /// and its files.
    pub fn qualify_batch(&self, mut b: Batch) -> Batch {
        if self.name.is_empty() {
            return b;
        }
        b.id = self.qualify(&b.id);
        if !b.input_file_id.is_empty() {
            b.input_file_id = self.qualify(&b.input_file_id);
        }
        for f in [&mut b.output_file_id, &mut b.error_file_id]
            .into_iter()
            .flatten()
        {
            *f = self.qualify(f);
        }
        b
    }

    pub fn info(&self) -> UpstreamInfo {
        if self.sandbox {
            UpstreamInfo::Sandbox
        } else {
            UpstreamInfo::Remote {
                base_url: self.client.base_url().to_string(),
            }
        }
    }

    /// Asks the upstream for one batch: proves it answers, the path is the
    /// kind's API and the key is accepted.
    pub async fn probe(&self) -> Reachability {
        let started = Instant::now();
        let result = self.client.probe().await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (ok, msg) = match result {
            Ok(()) => (true, Msg::new(Key::ProbeReachable).arg("ms", latency_ms)),
            Err(UpstreamError::Api { status, .. }) => {
                let key = match status {
                    401 => Key::ProbeKeyRefused,
                    403 => Key::ProbeKeyForbidden,
                    404 => Key::ProbeNoBatchApi,
                    429 => Key::ProbeRateLimited,
                    _ => Key::ProbeUnexpected,
                };
                (false, Msg::new(key).arg("status", status))
            }
            Err(e) => (false, Msg::text(e)),
        };
        Reachability {
            ok,
            detail: msg.to_string(),
            latency_ms,
            msg: Some(msg),
        }
    }
}

/// Every upstream, the first one first. The upstreams file's may change
/// while the server runs ([`spawn_reload`]): callers take a snapshot.
pub struct Upstreams(std::sync::RwLock<Arc<Vec<Arc<Upstream>>>>);

impl Upstreams {
    /// `list` must not be empty and its names must differ (the upstreams
    /// file's check sees to it).
    pub fn new(list: Vec<Upstream>) -> Self {
        Self(std::sync::RwLock::new(Arc::new(
            list.into_iter().map(Arc::new).collect(),
        )))
    }

    /// The upstreams now.
    /// The price table of the upstream `name` (stored name, `""` for the
    /// first), when it has its own.
    pub fn prices(&self, name: &str) -> Option<Arc<batchboard_core::prices::PriceTable>> {
        self.all()
            .iter()
            .find(|u| u.name == name)
            .and_then(|u| u.prices.clone())
    }

    pub fn all(&self) -> Arc<Vec<Arc<Upstream>>> {
        match self.0.read() {
            Ok(list) => list.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The first upstream: where batches are created unless another is
    /// chosen, and what the banner describes.
    pub fn first(&self) -> Arc<Upstream> {
        self.all()[0].clone()
    }

    pub fn named(&self, name: &str) -> Option<Arc<Upstream>> {
        self.all().iter().find(|u| u.name == name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.all().iter().map(|u| u.name.clone()).collect()
    }

    /// Asks every upstream at once whether it answers and takes the key:
    /// each one's name (`""` for the first) and answer, in order.
    pub async fn probe_all(&self) -> Vec<(String, Reachability)> {
        let all = self.all();
        let answers = futures_util::future::join_all(all.iter().map(|u| u.probe())).await;
        all.iter().map(|u| u.name.clone()).zip(answers).collect()
    }

    /// Whether `u` is still one of the upstreams (not removed or replaced
    /// by a change of the file).
    pub fn is_current(&self, u: &Arc<Upstream>) -> bool {
        self.all().iter().any(|x| Arc::ptr_eq(x, u))
    }

    fn replace(&self, list: Vec<Arc<Upstream>>) {
        if list.is_empty() {
            return;
        }
        match self.0.write() {
            Ok(mut current) => *current = Arc::new(list),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(list),
        }
    }

    /// The upstream a dashboard id names, and the id it has there.
    pub fn route<'a>(&self, id: &'a str) -> Result<(Arc<Upstream>, &'a str), ApiError> {
        let (name, own) = split_qualified(id);
        let upstream = self.named(name).ok_or_else(|| {
            ApiError::Invalid(Msg::new(Key::ProblemUnknownUpstream).arg("name", name))
        })?;
        Ok((upstream, own))
    }
}

impl Upstream {
    /// Refuses what this upstream does not take (see [`Offer::check`]):
    /// `window` is `None` for a message batch, which has none.
    pub fn check_limits(
        &self,
        window: Option<&str>,
        report: &batchboard_core::validate::Report,
    ) -> Result<(), ApiError> {
        self.offer
            .check(window, report)
            .map_err(|b| b.refusal(self.display_name()))
    }

    /// Refuses a role that may not create batches here.
    pub fn check_may_create(&self, role: Role) -> Result<(), ApiError> {
        if self.create_roles.contains(&role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                Msg::new(Key::ServerUpstreamCreateForbidden)
                    .arg("role", role.as_str())
                    .arg("name", self.display_name()),
            ))
        }
    }
}

impl Upstreams {
    /// Where a new batch goes: the upstream `name` (none or `""`: the
    /// first), if `role` may create batches there.
    pub fn for_create(&self, name: Option<&str>, role: Role) -> Result<Arc<Upstream>, ApiError> {
        let name = name.map(str::trim).unwrap_or_default();
        let upstream = match name {
            "" => self.first(),
            "default" => self.named("").unwrap_or_else(|| self.first()),
            _ => self.named(name).ok_or_else(|| {
                ApiError::Invalid(Msg::new(Key::ProblemUnknownUpstream).arg("name", name))
            })?,
        };
        upstream.check_may_create(role)?;
        Ok(upstream)
    }
}

impl Upstream {
    /// What pages show of it, for a user of `role`.
    pub fn view(&self, role: Role) -> batchboard_core::dashboard::UpstreamView {
        batchboard_core::dashboard::UpstreamView {
            name: self.display_name().to_owned(),
            kind: self.kind().as_str().to_owned(),
            base_url: (!self.sandbox).then(|| self.client.base_url().to_string()),
            may_create: self.create_roles.contains(&role),
            offer: self.offer.clone(),
            message_batches: self.kind().message_batches(),
        }
    }
}

/// The upstreams the file at `path` lists, checked, each with its client;
/// none when there is no file and it is not `required`.
pub fn from_file(
    path: &std::path::Path,
    required: bool,
    args: &ServeArgs,
) -> Result<Vec<Upstream>, String> {
    if !required && !path.exists() {
        return Ok(Vec::new());
    }
    let listed =
        super::upstreams::load(path, &|var| std::env::var(var).ok()).map_err(|e| e.to_string())?;
    listed
        .iter()
        .map(|c| {
            Upstream::from_config(c, args)
                .map_err(|e| format!("{}: upstream {:?}: {e}", path.display(), c.name))
        })
        .collect()
}

/// Reads the upstreams file again whenever it changes (checked every two
/// seconds): the first upstream (the flags', or the sandbox) stays, the
/// file's are replaced, and a poller starts for each. A file that does not
/// check is logged and the upstreams stay as they were.
pub fn spawn_reload(
    state: crate::state::AppState,
    path: std::path::PathBuf,
    args: ServeArgs,
    watch: crate::watcher::WatchOptions,
) {
    tokio::spawn(async move {
        let stamp = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let mut last = stamp(&path);
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            let now = stamp(&path);
            if now == last {
                continue;
            }
            last = now;
            let listed = match from_file(&path, false, &args) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "upstreams file changed but does not check; keeping the upstreams as they were");
                    continue;
                }
            };
            let mut next: Vec<Arc<Upstream>> = state
                .upstreams
                .all()
                .iter()
                .filter(|u| u.name.is_empty())
                .cloned()
                .collect();
            next.extend(listed.into_iter().map(Arc::new));
            if next.is_empty() {
                continue;
            }
            let fresh: Vec<Arc<Upstream>> = next
                .iter()
                .filter(|u| !u.name.is_empty())
                .cloned()
                .collect();
            state.upstreams.replace(next);
            state.facets.clear();
            tracing::info!(upstreams = ?state.upstreams.names(), "upstreams file read again");
            for u in fresh {
                crate::watcher::spawn_one(state.clone(), u, watch.clone());
            }
        }
    });
}
