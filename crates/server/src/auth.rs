//! Who may use the dashboard: sessions, sign-in (local accounts or a trusted
//! proxy's header), cross-site request checks and sign-in throttling.
//!
//! [`gate`] runs in front of every route. It refuses cross-site
//! state-changing requests, finds the user (session or proxy header) and puts
//! a [`CurrentUser`] into the request; without one, only [`PUBLIC`] paths
//! answer. Roles are then checked where the work is done: in each server
//! function ([`batchboard_core::dashboard::require`]) and each route handler ([`require`]).

use crate::http::routes;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Form, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::config::{AuthArgs, AuthMode, CookieSecure};
use super::state::AppState;
use super::users::Users;
use crate::store::{now, Audit};
use batchboard_core::access::{safe_next, CurrentUser, Role};
use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};

/// The session cookie's name.
pub const COOKIE: &str = "batchboard_session";
pub(crate) const SESSION_KEY: &str = "auth";

/// Password checks (argon2id, about 19 MiB each) running at once.
const MAX_PASSWORD_CHECKS: usize = 4;

/// The longest user name the sign-in form accepts.
pub const MAX_NAME_CHARS: usize = 128;

/// Paths answered without a session: health, the sign-in page and its form,
/// the one server function that says who is signed in, and static assets.
pub const PUBLIC: &[&str] = &[
    routes::HEALTHZ,
    routes::READYZ,
    // Restricted by address instead (`--metrics-allow`).
    routes::METRICS,
    "/login",
    routes::SIGN_IN,
    // The language switch, on the sign-in page too.
    routes::LOCALE,
    "/api/whoami",
    "/favicon.svg",
    // Signed by the upstream instead (Standard Webhooks).
    "/webhooks/",
    "/pkg/",
];

fn is_public(path: &str) -> bool {
    PUBLIC
        .iter()
        .any(|p| path == *p || (p.ends_with('/') && path.starts_with(p)))
}

/// The address a request came from (behind a trusted proxy: the client's).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// What a session holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionAuth {
    pub(crate) name: String,
    /// Unix seconds.
    pub(crate) signed_in_at: i64,
    /// The account's credential at sign-in ([`Users::credential`]): a
    /// session outlives neither a new password nor the account's removal.
    #[serde(default)]
    credential: Option<String>,
    /// Unix seconds of the last request, kept to the minute: it moves the
    /// session's idle expiry along (a session is saved only when changed).
    #[serde(default)]
    pub(crate) last_seen_at: i64,
    /// The address it signed in from.
    #[serde(default)]
    pub(crate) address: Option<String>,
    /// A random name for the admin's "end session" (not the session id).
    #[serde(default)]
    pub(crate) handle: String,
}

impl SessionAuth {
    /// Whether the session still stands: not past its absolute lifetime,
    /// and signed in with the account's current credential. Its role.
    pub(crate) fn standing(&self, auth: &Auth) -> Option<Role> {
        if now() - self.signed_in_at > auth.max_age.as_secs() as i64 {
            return None;
        }
        auth.users
            .signed_in(&self.name)
            .filter(|(_, credential)| *credential == self.credential)
            .map(|(role, _)| role)
    }
}

/// Sign-in configuration and state shared by every request.
pub struct Auth {
    pub mode: AuthMode,
    pub users: Users,
    proxy_header: axum::http::HeaderName,
    proxy_default_role: Option<Role>,
    trusted: Vec<IpNet>,
    pub cookie_secure: CookieSecure,
    pub idle: Duration,
    max_age: Duration,
    throttle: Throttle,
    /// Password checks running at once.
    checks: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Auth {
    pub fn new(args: &AuthArgs, users: Users) -> Self {
        Self {
            mode: args.auth,
            users,
            proxy_header: args.proxy_user_header.clone(),
            proxy_default_role: args.proxy_default_role.role(),
            trusted: args.trusted_proxies.clone(),
            cookie_secure: args.cookie_secure,
            idle: Duration::from_secs(u64::from(args.session_idle_minutes) * 60),
            max_age: Duration::from_secs(u64::from(args.session_max_hours) * 3600),
            throttle: Throttle::new(args.login_attempts, Duration::from_secs(15 * 60)),
            checks: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_PASSWORD_CHECKS)),
        }
    }

    fn trusts(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.trusted.iter().any(|n| n.contains(&ip)))
    }

    /// The client's address: the peer's, or behind a trusted proxy the
    /// nearest untrusted hop of `X-Forwarded-For`.
    fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect::<Vec<_>>();
        forwarded
            .iter()
            .rev()
            .find(|ip| !self.trusts(Some(**ip)))
            .or(forwarded.first())
            .copied()
            .or(peer)
    }

    /// Whether the browser reached us over HTTPS (per a trusted proxy).
    fn https(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> bool {
        self.trusts(peer)
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https"))
    }

    /// Whether `user`, signed in when a long request (an event stream)
    /// began, still is: the session not ended or expired, the account not
    /// removed. Proxy users: the account (or the default role) still there.
    pub async fn still_signed_in(&self, user: &CurrentUser, session: Option<&Session>) -> bool {
        if user.via_proxy {
            return self
                .users
                .role(&user.name)
                .or(self.proxy_default_role)
                .is_some();
        }
        match session {
            Some(s) => session_user(self, s)
                .await
                .is_some_and(|u| u.name == user.name),
            None => false,
        }
    }

    /// The user a trusted proxy names in its header.
    fn proxy_user(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<CurrentUser> {
        if !self.trusts(peer) {
            return None;
        }
        // Exactly one: a second one may be the client's own, passed on by
        // a proxy that only adds its header.
        let mut values = headers.get_all(&self.proxy_header).iter();
        let value = values.next()?;
        if values.next().is_some() {
            tracing::warn!(header = %self.proxy_header, "refused a request naming its user twice");
            return None;
        }
        let name = value.to_str().ok()?.trim().to_ascii_lowercase();
        super::users::check_name(&name).ok()?;
        let role = self.users.role(&name).or(self.proxy_default_role)?;
        Some(CurrentUser {
            name,
            role,
            via_proxy: true,
        })
    }
}

/// An account's slowed check in flight (see `Throttle::slowed_turn`).
struct SlowedTurn<'a>(&'a Mutex<std::collections::HashSet<String>>, String);

impl Drop for SlowedTurn<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(&self.1);
        }
    }
}

/// The longest a password check waits for its account's many failures.
const MAX_SLOWDOWN: Duration = Duration::from_secs(10);

/// How sign-in attempts with names no account can have are counted.
const INVALID_NAME: &str = "(invalid name)";

/// Counts failed sign-ins per account and per address in a sliding window:
/// in memory with SQLite (one replica), in the database with Postgres
/// ([`Throttle::take`]), where replicas share it.
struct Throttle {
    per_account: u32,
    window: Duration,
    /// Wrong passwords per account from every source, for the slowdown.
    account: Mutex<HashMap<String, Vec<Instant>>>,
    /// Accounts with a slowed check in flight.
    slowed: Mutex<std::collections::HashSet<String>>,
    /// Throttle transactions in the database at once; beyond, this
    /// replica's own counters (a flood must not take the pool).
    shared_slots: tokio::sync::Semaphore,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
    /// Refused attempts per account in the current window.
    refused: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Throttle {
    fn new(per_account: u32, window: Duration) -> Self {
        Self {
            per_account,
            window,
            failures: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            account: Mutex::new(HashMap::new()),
            slowed: Mutex::new(std::collections::HashSet::new()),
            shared_slots: tokio::sync::Semaphore::new(4),
        }
    }

    /// The source of an attempt: its address, or its /64 for IPv6 (one
    /// machine holds a whole /64).
    fn source(ip: Option<IpAddr>) -> String {
        match ip {
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            Some(v4) => v4.to_string(),
            None => String::new(),
        }
    }

    /// The counters an attempt counts against: the account from this
    /// source (a stranger elsewhere cannot lock the account's owner out),
    /// and the source across accounts (4× the limit).
    fn keys(name: &str, ip: Option<IpAddr>) -> [(String, u32); 2] {
        let source = Self::source(ip);
        [
            (format!("user:{name}@{source}"), 1),
            (format!("ip:{source}"), 4),
        ]
    }

    /// Seconds until another attempt is allowed, if it is not now.
    fn wait(
        &self,
        map: &mut HashMap<String, Vec<Instant>>,
        name: &str,
        ip: Option<IpAddr>,
    ) -> Option<u64> {
        let now = Instant::now();
        Self::keys(name, ip)
            .into_iter()
            .filter_map(|(key, factor)| {
                let list = map.get_mut(&key)?;
                list.retain(|t| now.duration_since(*t) < self.window);
                let limit = (self.per_account * factor) as usize;
                (list.len() >= limit).then(|| {
                    let oldest = list[list.len() - limit];
                    self.window
                        .saturating_sub(now.duration_since(oldest))
                        .as_secs()
                        .max(1)
                })
            })
            .max()
    }

    /// Takes an attempt, counted as failed until [`Self::succeeded`] says
    /// otherwise, or says how long to wait. One step under one lock: many
    /// guesses at once cannot all pass before the first is counted.
    fn reserve(&self, name: &str, ip: Option<IpAddr>) -> Result<(), u64> {
        let Ok(mut map) = self.failures.lock() else {
            return Ok(());
        };
        if let Some(wait) = self.wait(&mut map, name, ip) {
            return Err(wait);
        }
        for (key, _) in Self::keys(name, ip) {
            map.entry(key).or_default().push(Instant::now());
        }
        // Forget old entries now and then so the map cannot grow forever.
        if map.len() > 10_000 {
            let window = self.window;
            map.retain(|_, v| v.last().is_some_and(|t| t.elapsed() < window));
        }
        Ok(())
    }

    /// Takes an attempt ([`Self::reserve`]) where the counters are: in the
    /// database when replicas share it, else here. A database that fails
    /// falls back to this replica's own counters.
    async fn take(&self, db: &crate::store::Db, name: &str, ip: Option<IpAddr>) -> Result<(), u64> {
        if db.shares_throttle() {
            // Attempts queue here, not on the database's connections; a
            // flood waits its turn, or is told to come back.
            let Ok(Ok(_slot)) =
                tokio::time::timeout(Duration::from_secs(2), self.shared_slots.acquire()).await
            else {
                return Err(5);
            };
            let limits = Self::keys(name, ip).map(|(k, f)| (k, self.per_account * f));
            match db.throttle_reserve(&limits, self.window).await {
                Ok(r) => return r,
                Err(e) => {
                    tracing::warn!(error = %e, "sign-in throttle: the database failed; counting here")
                }
            }
        }
        self.reserve(name, ip)
    }

    /// Gives back an attempt that was never checked (no password-check
    /// slot was free): its account and source each lose their newest
    /// attempt, and nothing else.
    async fn give_back(&self, db: &crate::store::Db, name: &str, ip: Option<IpAddr>) {
        let keys = Self::keys(name, ip);
        if db.shares_throttle() {
            for (key, _) in &keys {
                if let Err(e) = db.throttle_give_back(key).await {
                    tracing::warn!(error = %e, "sign-in throttle: the database failed");
                }
            }
        }
        if let Ok(mut map) = self.failures.lock() {
            for (key, _) in keys {
                if let Some(list) = map.get_mut(&key) {
                    list.pop();
                }
            }
        }
    }

    /// [`Self::succeeded`], where the counters are.
    async fn forgive(&self, db: &crate::store::Db, name: &str, ip: Option<IpAddr>) {
        if db.shares_throttle() {
            let [(account, _), (source, _)] = Self::keys(name, ip);
            if let Err(e) = db.throttle_forgive(&account, &source).await {
                tracing::warn!(error = %e, "sign-in throttle: the database failed");
            }
        }
        self.succeeded(name, ip);
    }

    /// Failures for one account from every source past which its checks
    /// slow down, a second more for each (at most [`MAX_SLOWDOWN`]).
    const SLOW_AFTER: usize = 20;

    /// A wrong password for `name` (from any source).
    fn account_failed(&self, name: &str) {
        let Ok(mut map) = self.account.lock() else {
            return;
        };
        if map.len() > 10_000 {
            let window = self.window;
            map.retain(|_, v| v.last().is_some_and(|t| t.elapsed() < window));
            if map.len() > 10_000 {
                map.clear();
            }
        }
        let list = map.entry(name.to_owned()).or_default();
        list.retain(|t| t.elapsed() < self.window);
        list.push(Instant::now());
    }

    /// The one slowed check of `name` in flight, held until dropped; `None`
    /// while another is.
    fn slowed_turn(&self, name: &str) -> Option<SlowedTurn<'_>> {
        let mut set = self.slowed.lock().ok()?;
        set.insert(name.to_owned())
            .then(|| SlowedTurn(&self.slowed, name.to_owned()))
    }

    /// How long `name`'s next check waits: nothing, until many failures
    /// from everywhere in the window.
    fn slowdown(&self, name: &str) -> Duration {
        let Ok(map) = self.account.lock() else {
            return Duration::ZERO;
        };
        let recent = map.get(name).map_or(0, |l| {
            l.iter().filter(|t| t.elapsed() < self.window).count()
        });
        let secs = recent.saturating_sub(Self::SLOW_AFTER) as u64;
        Duration::from_secs(secs).min(MAX_SLOWDOWN)
    }

    /// The attempt was not a failure after all (the password was right, or
    /// it was never checked): the account starts afresh from this source,
    /// and the source gets its attempt back.
    fn succeeded(&self, name: &str, ip: Option<IpAddr>) {
        if let Ok(mut map) = self.failures.lock() {
            let [(account, _), (source, _)] = Self::keys(name, ip);
            map.remove(&account);
            if let Some(list) = map.get_mut(&source) {
                list.pop();
            }
        }
    }

    /// Counts an attempt refused because of the throttle, per source; says
    /// which to write to the audit log: the first of a window, then every
    /// 100th (strangers cannot grow the log with refused attempts, whatever
    /// names they send).
    fn refused(&self, ip: Option<IpAddr>) -> Option<u64> {
        let mut map = self.refused.lock().ok()?;
        // Forget old windows now and then so the map cannot grow forever;
        // past 10,000 sources at once, start over.
        if map.len() > 10_000 {
            let window = self.window;
            map.retain(|_, (since, _)| since.elapsed() < window);
            if map.len() > 10_000 {
                map.clear();
            }
        }
        let (since, n) = map.entry(Self::source(ip)).or_insert((Instant::now(), 0));
        if since.elapsed() >= self.window {
            (*since, *n) = (Instant::now(), 0);
        }
        *n += 1;
        (*n == 1 || *n % 100 == 0).then_some(*n)
    }
}

/// The peer's address; an IPv4 client of a dual-stack listener
/// (`::ffff:a.b.c.d`) as its IPv4 address, so that it is throttled and
/// matched against `--trusted-proxies` as itself.
fn peer(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
}

/// Whether a state-changing request comes from one of our own pages: its
/// `Origin` (or, failing that, `Referer`) must name the host it was sent to.
/// Paths that stream a file: `/files/{id}/content`, `/api/batches/{id}/merged`.
fn is_download(path: &str) -> bool {
    (path.starts_with("/files/") && path.ends_with("/content"))
        || (path.starts_with("/api/batches/") && path.ends_with("/merged"))
}

fn same_origin(headers: &HeaderMap, trusted_proxy: bool) -> bool {
    let host = trusted_proxy
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok());
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(|s| url::Url::parse(s).ok());
    match (host, source) {
        (Some(host), Some(url)) => {
            let authority = match (url.host_str(), url.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => return false,
            };
            authority.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// A refusal in the shape every JSON route uses.
fn refuse(e: ApiError) -> Response {
    crate::http::HttpError::from(e).into_response()
}

/// The middleware in front of every route; see the module docs.
pub async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let auth = &state.auth;
    let peer = peer(&req);
    let trusted = auth.trusts(peer);
    // Scripts with a personal access token: no cookies, so no cross-site
    // request can borrow them; the token is the sign-in.
    // Webhooks from upstreams: no session, no origin; their signature is
    // checked by the route.
    if req.uri().path().starts_with("/webhooks/") {
        return next.run(req).await;
    }
    if crate::gateway::is_gateway(req.uri().path()) {
        if let Some(ip) = auth.client_ip(peer, req.headers()) {
            req.extensions_mut().insert(ClientIp(ip));
        }
        return crate::gateway::gate(state.clone(), req, next).await;
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !same_origin(req.headers(), trusted) {
        tracing::warn!(path = %req.uri().path(), "refused a cross-site request");
        return refuse(ApiError::Forbidden(Msg::new(Key::ServerCrossSite)));
    }
    // Downloads do work and leave audit entries in the viewer's name: a
    // link on another site must not start one (browsers say where a
    // request came from in `Sec-Fetch-Site`).
    if is_download(req.uri().path())
        && req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        tracing::warn!(path = %req.uri().path(), "refused a download started by another site");
        return refuse(ApiError::Forbidden(Msg::new(Key::ServerCrossSite)));
    }
    if let Some(ip) = auth.client_ip(peer, req.headers()) {
        req.extensions_mut().insert(ClientIp(ip));
    }
    let user = match auth.mode {
        AuthMode::Proxy => auth.proxy_user(peer, req.headers()),
        AuthMode::Local => match req.extensions().get::<Session>() {
            Some(session) => session_user(auth, session).await,
            None => None,
        },
    };
    match user {
        Some(u) => {
            req.extensions_mut().insert(u);
        }
        None if is_public(req.uri().path()) => {}
        None => {
            let wants_page = *req.method() == Method::GET
                && req
                    .headers()
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|a| a.contains("text/html"));
            if wants_page && auth.mode == AuthMode::Local {
                let next = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let target = format!("/login?next={}", urlencode(next));
                return Redirect::to(&target).into_response();
            }
            return refuse(ApiError::Unauthenticated);
        }
    }
    next.run(req).await
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The user of a session, if it is signed in, not past its absolute
/// lifetime, and the account still exists (its role read afresh).
async fn session_user(auth: &Auth, session: &Session) -> Option<CurrentUser> {
    let mut sa: SessionAuth = session.get(SESSION_KEY).await.ok().flatten()?;
    match sa.standing(auth) {
        Some(role) => {
            // Seen again: saved at most once a minute, which also moves the
            // idle expiry along.
            let t = now();
            if t - sa.last_seen_at >= 60 {
                sa.last_seen_at = t;
                if let Err(e) = session.insert(SESSION_KEY, &sa).await {
                    tracing::warn!(error = %e, "cannot note the session's activity");
                }
            }
            Some(CurrentUser {
                via_proxy: false,
                name: sa.name,
                role,
            })
        }
        _ => {
            let _ = session.flush().await;
            None
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

fn back_to_login(error: &str, next: &str, extra: &str) -> Response {
    Redirect::to(&format!(
        "/login?error={error}{extra}&next={}",
        urlencode(safe_next(next))
    ))
    .into_response()
}

/// Back to the sign-in page saying to wait `wait` seconds (also as
/// `Retry-After`).
fn throttled(next: &str, wait: u64) -> Response {
    let mut resp = back_to_login("throttled", next, &format!("&retry_after={wait}"));
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Signing in and out (the form posts here; the page is the app's).
pub fn router() -> axum::Router<AppState> {
    use axum::routing::post;
    axum::Router::new()
        .route(routes::SIGN_IN, post(login))
        .route(routes::SIGN_OUT, post(logout))
}

/// `POST /auth/login`: checks the password (throttled per account and per
/// address), rotates the session id and signs the session in.
pub async fn login(
    State(state): State<AppState>,
    session: Session,
    ip: Option<axum::Extension<ClientIp>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let auth = state.auth.clone();
    let ip = ip.map(|axum::Extension(i)| i.0);
    let ip_text = ip.map(|i| i.to_string());
    let name = form.username.trim().to_string();
    // A name no account can have is throttled and audited as one name, so
    // that made-up names cannot each grow the throttle's memory.
    let name = if crate::users::check_name(&name).is_ok() {
        name
    } else {
        INVALID_NAME.to_string()
    };
    if auth.mode != AuthMode::Local {
        return refuse(ApiError::Invalid(Msg::new(Key::ServerSignInByProxy)));
    }
    let audit_failure = |detail: Msg| {
        let state = state.clone();
        let name = name.clone();
        let ip_text = ip_text.clone();
        async move {
            state
                .audit(Audit {
                    actor: &name,
                    action: "sign_in_failed",
                    target: None,
                    detail: Some(detail),
                    ip: ip_text.as_deref(),
                })
                .await;
        }
    };
    // No account has a longer name: refused before it reaches the audit
    // log or the throttle's memory.
    if form.username.trim().chars().count() > MAX_NAME_CHARS {
        return back_to_login("invalid", &form.next, "");
    }
    // The throttle first: a refused attempt costs no password check.
    if let Err(wait) = auth.throttle.take(&state.db, &name, ip).await {
        match auth.throttle.refused(ip) {
            Some(1) => audit_failure(Msg::new(Key::AuditDetailThrottled)).await,
            Some(n) => audit_failure(Msg::new(Key::AuditDetailThrottledN).arg("n", n)).await,
            None => {}
        }
        return throttled(&form.next, wait);
    }
    // Many failures for one account from anywhere slow its checks down
    // (rather than lock its owner out): guesses from many addresses, each
    // under its own limit, meet this one. One slowed check per account at
    // a time, waiting before it takes a password-check slot: the others
    // are refused, so slowed guesses cannot fill the slots.
    let delay = auth.throttle.slowdown(&name);
    let _slowed = if delay.is_zero() {
        None
    } else {
        let Some(turn) = auth.throttle.slowed_turn(&name) else {
            return throttled(&form.next, delay.as_secs().max(1));
        };
        tokio::time::sleep(delay).await;
        Some(turn)
    };
    // A bounded number of password checks at once (each takes about
    // 19 MiB and a core for a moment); beyond it, come back shortly (the
    // attempt is given back).
    let Ok(checking) = auth.checks.clone().try_acquire_owned() else {
        auth.throttle.give_back(&state.db, &name, ip).await;
        let mut resp = refuse(ApiError::Busy(Msg::new(Key::ServerSignInsBusy)));
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return resp;
    };
    let role = {
        let auth = auth.clone();
        let (name, password) = (name.clone(), form.password);
        tokio::task::spawn_blocking(move || auth.users.check_password(&name, &password))
            .await
            .ok()
            .flatten()
    };
    // The slot is for the check only, not for the writes after it.
    drop(checking);
    if role.is_none() {
        auth.throttle.account_failed(&name);
        audit_failure(Msg::new(Key::AuditDetailWrongPassword)).await;
        return back_to_login("invalid", &form.next, "");
    }
    auth.throttle.forgive(&state.db, &name, ip).await;
    let stored = async {
        session.cycle_id().await?;
        session
            .insert(
                SESSION_KEY,
                SessionAuth {
                    name: name.clone(),
                    signed_in_at: now(),
                    credential: auth.users.credential(&name),
                    last_seen_at: now(),
                    address: ip_text.clone(),
                    handle: uuid::Uuid::new_v4().simple().to_string(),
                },
            )
            .await
    }
    .await;
    if let Err(e) = stored {
        tracing::error!(error = %e, "cannot store the session");
        return refuse(ApiError::Internal("cannot store the session".into()));
    }
    state
        .audit(Audit {
            actor: &name,
            action: "sign_in",
            target: None,
            detail: None,
            ip: ip_text.as_deref(),
        })
        .await;
    Redirect::to(safe_next(&form.next)).into_response()
}

/// `POST /auth/logout`: ends the session everywhere (the row is deleted).
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    user: Option<axum::Extension<CurrentUser>>,
    ip: Option<axum::Extension<ClientIp>>,
) -> Response {
    if let Some(axum::Extension(u)) = user {
        let ip = ip.map(|axum::Extension(i)| i.0.to_string());
        state
            .audit(Audit {
                actor: &u.name,
                action: "sign_out",
                target: None,
                detail: None,
                ip: ip.as_deref(),
            })
            .await;
    }
    if let Some(id) = session.id() {
        state.hub.end_session(id);
    }
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "cannot end the session");
    }
    Redirect::to("/login").into_response()
}

/// Marks our cookies (the session's and the language's) `Secure` with
/// `--cookie-secure always`, and with `auto` when the browser reached us
/// over HTTPS through a trusted proxy.
pub async fn secure_cookie(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let https = match state.auth.cookie_secure {
        CookieSecure::Always => true,
        CookieSecure::Auto => state.auth.https(peer(&req), req.headers()),
        CookieSecure::Never => false,
    };
    let mut resp = next.run(req).await;
    if https {
        let cookies: Vec<HeaderValue> = resp
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        resp.headers_mut().remove(header::SET_COOKIE);
        for c in cookies {
            let v = match c.to_str() {
                Ok(s)
                    if (s.starts_with(COOKIE) || s.starts_with(crate::http::locale::COOKIE))
                        && !s.contains("; Secure") =>
                {
                    HeaderValue::from_str(&format!("{s}; Secure")).unwrap_or(c)
                }
                _ => c,
            };
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origin_must_match_host() {
        let ok = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ]);
        assert!(same_origin(&ok, false));
        let evil = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example"),
        ]);
        assert!(!same_origin(&evil, false));
        let none = headers(&[("host", "127.0.0.1:3000")]);
        assert!(!same_origin(&none, false));
        let referer = headers(&[("host", "b.example"), ("referer", "https://b.example/x?y")]);
        assert!(same_origin(&referer, false));
        let null = headers(&[("host", "b.example"), ("origin", "null")]);
        assert!(!same_origin(&null, false));
        // Behind a trusted proxy the forwarded host counts.
        let fwd = headers(&[
            ("host", "10.0.0.5:3000"),
            ("x-forwarded-host", "batch.example"),
            ("origin", "https://batch.example"),
        ]);
        assert!(same_origin(&fwd, true));
        assert!(!same_origin(&fwd, false));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/batches/x"), "/batches/x");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next(""), "/");
    }

    #[test]
    fn many_failures_for_one_account_from_anywhere_slow_it_down_without_locking() {
        let t = Throttle::new(5, Duration::from_secs(900));
        for _ in 0..Throttle::SLOW_AFTER {
            t.account_failed("boss");
        }
        assert_eq!(t.slowdown("boss"), Duration::ZERO);
        for _ in 0..5 {
            t.account_failed("boss");
        }
        assert_eq!(t.slowdown("boss"), Duration::from_secs(5));
        for _ in 0..100 {
            t.account_failed("boss");
        }
        assert_eq!(t.slowdown("boss"), MAX_SLOWDOWN);
        assert_eq!(t.slowdown("someone-else"), Duration::ZERO);
        // One slowed check of an account at a time.
        let turn = t.slowed_turn("boss").expect("the first");
        assert!(t.slowed_turn("boss").is_none());
        assert!(t.slowed_turn("someone-else").is_some());
        drop(turn);
        assert!(t.slowed_turn("boss").is_some());
    }

    #[test]
    fn an_ipv4_client_of_a_dual_stack_listener_is_itself() {
        let mut req = Request::new(axum::body::Body::empty());
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(
            "[::ffff:10.1.2.3]:5000".parse().unwrap(),
        ));
        assert_eq!(peer(&req), Some("10.1.2.3".parse().unwrap()));
        // Two such clients are two sources, not one /64.
        assert_ne!(
            Throttle::source(peer(&req)),
            Throttle::source(Some("10.9.9.9".parse().unwrap()))
        );
    }

    #[test]
    fn throttle_blocks_after_the_limit_and_success_resets_the_account() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let ip = Some("10.0.0.1".parse().unwrap());
        for _ in 0..3 {
            assert!(t.reserve("a", ip).is_ok());
        }
        assert!(t.reserve("a", ip).is_err());
        // Another account from the same address is not yet blocked (4× limit)…
        assert!(t.reserve("b", ip).is_ok());
        // …nor the account from another address.
        assert!(t.reserve("a", Some("10.0.0.2".parse().unwrap())).is_ok());
        t.succeeded("a", ip);
        assert!(t.reserve("a", ip).is_ok());
    }

    #[test]
    fn ipv6_sources_are_counted_by_their_64() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let one = Some("2001:db8::1".parse().unwrap());
        for _ in 0..2 {
            assert!(t.reserve("a", one).is_ok());
        }
        assert!(t
            .reserve("a", Some("2001:db8::2".parse().unwrap()))
            .is_err());
        assert!(t
            .reserve("a", Some("2001:db8:0:1::1".parse().unwrap()))
            .is_ok());
    }

    #[test]
    fn public_paths() {
        assert!(is_public("/pkg/batchboard.wasm"));
        assert!(is_public("/login"));
        assert!(!is_public("/loginx"));
        assert!(!is_public("/api/list_batches"));
        assert!(!is_public("/"));
    }
}
