//! Batchboard's server: configuration, the router and its HTTP plumbing,
//! sign-in and sessions, the store (database), the watcher, live events,
//! results and uploads, health checks and the process lifecycle.
//!
//! It must never depend on the app crate (pages and server functions sit
//! above it and call into it): the binary hands the app's pages in as
//! [`Pages`]. Nothing in it is compiled for the browser.

// Errors carry the upstream's whole error (message, type, code, param,
// request id, retry-after) by value; they are rare, so their size is fine.
#![allow(clippy::result_large_err)]

pub mod access_tokens;
pub mod auth;
pub mod budgets;
pub mod config;
pub mod events;
pub mod files;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod providers;
pub mod recent;
pub mod runtime;
pub mod services;
pub mod sessions;
pub mod state;
pub mod store;
pub mod tokens;
pub mod upstreams;
pub mod users;
pub mod watcher;
pub mod webhooks_in;

use std::path::Path;
use std::sync::Arc;

use axum::http::Request;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{AxumRouteListing, LeptosRoutes};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use batchboard_core::dashboard::UpstreamInfo;

use config::{Cli, Command, LogFormat, ServeArgs, UserCommand};
use providers::{Upstream, Upstreams};
use state::AppState;

/// Everything that stops the server from starting, each naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("--data-dir {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(
        "--site-root {0}: no such directory (build the site with `cargo leptos build --split`)"
    )]
    SiteRoot(String),
    #[error("upstream: {0}")]
    Upstream(String),
    #[error("{0}")]
    Config(String),
    #[error("--addr {addr}: cannot listen: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Db(#[from] store::DbError),
    #[error("users file {0}")]
    Users(#[from] users::UsersError),
}

impl From<batchboard_upstream::UpstreamError> for StartError {
    fn from(e: batchboard_upstream::UpstreamError) -> Self {
        Self::Upstream(e.to_string())
    }
}

/// The app's pages, as the server mounts them: their routes and the HTML
/// shell around them. The binary makes this from the app crate.
pub struct Pages<V> {
    pub routes: fn() -> Vec<AxumRouteListing>,
    pub shell: fn(LeptosOptions) -> V,
}

impl<V> Clone for Pages<V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V> Copy for Pages<V> {}

/// `batchboard user sessions NAME`: one line per session that still
/// stands (signed in, seen last, address, handle).
async fn user_sessions(
    name: &str,
    auth: &config::AuthArgs,
    data_dir: &std::path::Path,
    database_url: Option<&str>,
) -> Result<String, StartError> {
    let users_path = auth
        .users_file
        .clone()
        .unwrap_or_else(|| data_dir.join("users.toml"));
    let users = users::Users::open(users_path)?;
    if users.signed_in(name).is_none() {
        return Err(users::UsersError::Invalid(format!("no user '{name}'")).into());
    }
    let db = store::Db::open(database_url, data_dir).await?;
    let auth = auth::Auth::new(auth, users);
    let list = sessions::list(&db, &auth, None, Some(name)).await?;
    let utc = batchboard_core::i18n::utc;
    let mut out = format!("{} session(s) of {name}", list.len());
    for s in list {
        out.push_str(&format!(
            "\nsigned in {}\tlast seen {}\tfrom {}\t{}",
            utc(s.started_at),
            utc(s.last_seen_at),
            s.address.as_deref().unwrap_or("-"),
            s.handle
        ));
    }
    Ok(out)
}

/// Entry point of the `batchboard` binary.
///
/// With `allocator`, the servers (`serve`, `sandbox`) give freed memory
/// back to the system as [`runtime`] describes.
pub fn main<V: IntoView + 'static>(
    pages: Pages<V>,
    allocator: Option<runtime::Allocator>,
) -> std::process::ExitCode {
    let cli = Cli::parse_or_exit();
    let command = cli.into_command();
    match command {
        Command::User(UserCommand::Sessions {
            name,
            auth,
            data_dir,
            database_url,
        }) => {
            let listed = tokio::runtime::Runtime::new()
                .map_err(StartError::Serve)
                .and_then(|rt| {
                    rt.block_on(user_sessions(
                        &name,
                        &auth,
                        &data_dir,
                        database_url.as_deref(),
                    ))
                });
            return match listed {
                Ok(out) => {
                    println!("{out}");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("batchboard: {e}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Command::User(cmd) => {
            return match users::run(cmd) {
                Ok(out) => {
                    if !out.is_empty() {
                        println!("{out}");
                    }
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("batchboard: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Routes => {
            // Listing the pages builds the app's reactive graph: it needs a runtime.
            return match tokio::runtime::Runtime::new() {
                Ok(rt) => {
                    println!("{}", rt.block_on(async { route_inventory(pages) }));
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("batchboard: {e}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    init_logging(match &command {
        Command::Serve(a) => a.log.log_format,
        Command::Sandbox(a) => a.log.log_format,
        Command::User(_)
        | Command::Token(_)
        | Command::Routes
        | Command::IndexSeed(_)
        | Command::ExampleFile(_) => LogFormat::Text,
    });
    let serving = matches!(command, Command::Serve(_) | Command::Sandbox(_));
    let runtime = match runtime::build(allocator.filter(|_| serving)) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("batchboard: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Serve(args) => runtime.block_on(serve(args, pages, allocator)),
        Command::Sandbox(args) => runtime.block_on(sandbox(args)),
        Command::IndexSeed(args) => runtime.block_on(seed_index(args)),
        Command::Token(cmd) => runtime.block_on(access_tokens::run(cmd)),
        Command::ExampleFile(args) => example_file(&args),
        Command::User(_) | Command::Routes => Ok(()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("batchboard: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info,hyper=warn,reqwest=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Makes sure the data directory exists and can be written.
fn check_data_dir(path: &Path) -> Result<(), StartError> {
    let fail = |reason: String| StartError::DataDir {
        path: path.display().to_string(),
        reason,
    };
    users::private_dir(path).map_err(|e| fail(format!("cannot create: {e}")))?;
    let probe = path.join(".batchboard-write-test");
    std::fs::write(&probe, b"ok").map_err(|e| fail(format!("not writable: {e}")))?;
    std::fs::remove_file(&probe).map_err(|e| fail(format!("not writable: {e}")))?;
    Ok(())
}

fn leptos_options(args: &ServeArgs) -> LeptosOptions {
    let env = match std::env::var("LEPTOS_ENV").as_deref() {
        Ok("DEV" | "dev" | "development") => leptos::config::Env::DEV,
        _ => leptos::config::Env::PROD,
    };
    LeptosOptions::builder()
        .output_name(option_env!("LEPTOS_OUTPUT_NAME").unwrap_or("batchboard"))
        .site_root(args.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .hash_files(http::assets::Hashes::beside_binary().is_some())
        .site_addr(args.addr)
        .env(env)
        .build()
}

/// Every route as JSON: pages, server functions, the routes above, and the
/// paths that answer without a session.
fn route_inventory<V>(site: Pages<V>) -> String {
    let pages: Vec<String> = (site.routes)()
        .iter()
        .map(|r| r.path().to_string())
        .collect();
    let mut server_fns: Vec<serde_json::Value> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| serde_json::json!({ "method": method.as_str(), "path": path }))
        .collect();
    server_fns.sort_by_key(|v| v["path"].as_str().map(str::to_owned));
    let routes: Vec<serde_json::Value> = http::routes::ROUTES
        .iter()
        .chain(gateway::ROUTES)
        .map(|(m, p)| serde_json::json!({ "method": m, "path": p }))
        .collect();
    serde_json::json!({
        "pages": pages,
        "server_fns": server_fns,
        "routes": routes,
        "public": auth::PUBLIC,
    })
    .to_string()
}

/// Builds the whole application router around its state.
pub fn router<V: IntoView + 'static>(state: AppState, pages: Pages<V>) -> Router {
    use tower_sessions::cookie::SameSite;
    let leptos_options = state.leptos_options.clone();
    let site_root = std::path::PathBuf::from(leptos_options.site_root.as_ref());
    let routes = (pages.routes)();
    let shell = pages.shell;
    let sessions = tower_sessions::SessionManagerLayer::new(state.db.session_store())
        .with_name(auth::COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.auth.cookie_secure == config::CookieSecure::Always)
        .with_expiry(tower_sessions::Expiry::OnInactivity(
            time::Duration::try_from(state.auth.idle).unwrap_or(time::Duration::HOUR),
        ));
    let pages = Router::<AppState>::new()
        .leptos_routes_with_context(
            &state,
            routes,
            {
                let state = state.clone();
                move || provide_context(state.clone())
            },
            {
                let leptos_options = leptos_options.clone();
                move || shell(leptos_options.clone())
            },
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.renders.clone(),
            http::render::take_turns,
        ));
    let app = http::routes::router()
        .merge(pages)
        .merge(http::assets::pkg_router(
            &site_root,
            leptos_options.hash_files,
        ))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn(http::limits::bound_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::gate,
        ))
        .layer(axum::middleware::from_fn(http::locale::resolve))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::secure_cookie,
        ))
        .layer(http::assets::revalidate_by_default())
        .layer(axum::middleware::from_fn(http::headers::security))
        .layer(http::assets::compression())
        // Outside the sign-in gate: refused requests are counted too.
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.read_timeout,
        ))
        .with_state(state);
    with_request_trace(app, "dashboard", tracing::Level::INFO)
}

/// Request logs (method, path, status, latency) at `level`, with an
/// `x-request-id` taken from the request or made, and returned in the
/// response. A handler that panics is logged and answered 500, instead of
/// the connection being cut with no answer.
fn with_request_trace(router: Router, name: &'static str, level: tracing::Level) -> Router {
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(http::with_request_id))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(move |req: &Request<_>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("http", service = name, method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(level)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::from_fn(http::plain_request_id))
}

fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = %what, "a request handler panicked");
    axum::response::IntoResponse::into_response((
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "Internal error: the server could not answer this request.",
    ))
}

/// The upstreams: the flags' (or, with neither flags nor an upstreams
/// file, the built-in sandbox), then the upstreams file's.
/// Where the upstreams file is, and whether `--upstreams-file` named it.
fn upstreams_path(args: &ServeArgs) -> (std::path::PathBuf, bool) {
    match &args.upstreams_file {
        Some(p) => (p.clone(), true),
        None => (upstreams::default_path(&args.data_dir), false),
    }
}

async fn upstreams(args: &ServeArgs) -> Result<Upstreams, StartError> {
    let (path, given) = upstreams_path(args);
    let listed = providers::from_file(&path, given, args).map_err(StartError::Config)?;
    let mut all = Vec::with_capacity(listed.len() + 1);
    match Upstream::from_args(args)? {
        Some(u) => all.push(u),
        None if listed.is_empty() => all.push(start_embedded_sandbox(args).await?),
        None => {}
    }
    all.extend(listed);
    Ok(Upstreams::new(all))
}

async fn serve<V: IntoView + 'static>(
    args: ServeArgs,
    pages: Pages<V>,
    allocator: Option<runtime::Allocator>,
) -> Result<(), StartError> {
    check_data_dir(&args.data_dir)?;
    if !args.site_root.is_dir() {
        return Err(StartError::SiteRoot(args.site_root.display().to_string()));
    }
    let upstreams = upstreams(&args).await?;
    let db = store::Db::open(args.database_url.as_deref(), &args.data_dir).await?;
    db.session_store()
        .spawn_cleanup(std::time::Duration::from_secs(600));
    db.spawn_audit_retention(args.audit_retention_days);
    let users_path = args
        .auth
        .users_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("users.toml"));
    if args.auth.auth == config::AuthMode::Local {
        users::ensure_first_admin(&users_path)?;
    }
    let users = users::Users::open(users_path)?;
    let state = AppState::new(state::Shared {
        leptos_options: leptos_options(&args),
        upstreams: Arc::new(upstreams),
        data_dir: Arc::new(args.data_dir.clone()),
        db: db.clone(),
        auth: Arc::new(auth::Auth::new(&args.auth, users)),
        hub: Arc::new(events::Hub::with_stream_limit(
            args.max_streams_per_user as usize,
        )),
        webhook: args.webhook_url.clone().map(|url| {
            Arc::new(state::Webhook {
                url,
                public_url: args.public_url.clone(),
                http: reqwest::Client::new(),
                i18n: batchboard_core::i18n::I18n::get(&args.webhook_locale),
                secret: args.webhook_secret.clone(),
                format: args.webhook_format,
            })
        }),
        polling: Arc::default(),
        prices: Arc::new(price_table(args.price_table.as_deref())?),
        budgets: Arc::new(
            budgets::Budgets::open(
                args.budgets_file
                    .clone()
                    .unwrap_or_else(|| args.data_dir.join("budgets.toml")),
            )
            .map_err(|e| StartError::Config(format!("budgets file {e}")))?,
        ),
        team_key: Arc::from(args.team_key.as_str()),
        results: Arc::default(),
        metrics_allow: Arc::new(args.metrics_allow.clone()),
        uploads: Arc::new(tokio::sync::Semaphore::new(args.max_uploads as usize)),
        renders: http::render::Turns::new(args.max_renders),
        read_timeout: std::time::Duration::from_secs(args.read_timeout_secs),
        facets: Arc::default(),
        pages: Arc::default(),
        readiness: Arc::default(),
        spool_max_bytes: (args.spool_max_gb * 1e9) as u64,
        token_limits: Arc::default(),
        token_rpm: args.token_requests_per_minute,
        resync_gate: Default::default(),
    });
    state.hub.spawn_status(
        db.clone(),
        std::time::Duration::from_secs(2),
        state.upstreams.clone(),
    );
    {
        let (st, facets) = (state.clone(), state.facets.clone());
        state.hub.spawn_relay(
            db.clone(),
            move |b| services::spend::row_cost(&st, b),
            move || facets.clear(),
        );
    }
    let watch = watcher::WatchOptions {
        sweep: std::time::Duration::from_millis(args.watch_interval_ms),
        lease_retry: std::time::Duration::from_secs(2),
        holder: format!("{}:{}", args.addr, std::process::id()),
    };
    watcher::spawn(state.clone(), watch.clone());
    providers::spawn_reload(state.clone(), upstreams_path(&args).0, args.clone(), watch);
    let upstream = state
        .upstreams
        .all()
        .iter()
        .map(|u| {
            let at = match u.info() {
                UpstreamInfo::Remote { base_url } => base_url,
                UpstreamInfo::Sandbox => "the built-in sandbox".to_string(),
            };
            format!("{} ({}) at {at}", u.display_name(), u.kind().as_str())
        })
        .collect::<Vec<_>>()
        .join(", ");
    let hub = state.hub.clone();
    let read_timeout = state.read_timeout;
    let app = router(state, pages);
    let shutdown = shutdown_signal();
    let listener = bind(args.addr).await?;
    tracing::info!(addr = %args.addr, upstream = %upstream, "batchboard listening on http://{}", args.addr);
    let limits = http::limits::ConnLimits {
        header_timeout: read_timeout,
        max_connections: args.max_connections as usize,
    };
    // This thread started everything and now only accepts connections:
    // what it freed while starting goes back (the runtime's workers give
    // theirs back whenever the server goes quiet).
    if let Some(a) = allocator {
        (a.release_thread)();
    }
    http::limits::serve(listener, app, limits, async move {
        shutdown.await;
        // Live streams never end by themselves: end them, so that open
        // requests can finish and the process exit.
        hub.close();
    })
    .await
    .map_err(StartError::Serve)?;
    tracing::info!("batchboard stopped");
    Ok(())
}

/// The price table: the file given, or the built-in one.
fn price_table(path: Option<&Path>) -> Result<batchboard_core::prices::PriceTable, StartError> {
    let Some(path) = path else {
        return Ok(Default::default());
    };
    upstreams::read_prices(path)
        .map_err(|e| StartError::Config(format!("--price-table {}: {e}", path.display())))
}

/// `batchboard example-file`: a made-up valid request file.
fn example_file(args: &config::ExampleArgs) -> Result<(), StartError> {
    use std::io::Write;
    let fail = |e: std::io::Error| StartError::Config(format!("--out {}: {e}", args.out.display()));
    let file = std::fs::File::create(&args.out).map_err(fail)?;
    let mut out = std::io::BufWriter::new(file);
    let spec = batchboard_sandbox::example::ExampleSpec {
        requests: args.requests,
        target_bytes: (args.megabytes * 1e6) as u64,
        fail_every: args.fail_every,
        model: args.model.clone(),
    };
    let failing = batchboard_sandbox::example::write_example(&spec, &mut out).map_err(fail)?;
    out.flush().map_err(fail)?;
    let mut stdout = std::io::stdout().lock();
    for id in failing {
        let _ = writeln!(stdout, "{id}");
    }
    Ok(())
}

/// `batchboard index-seed`: made-up batches into the index, printed as JSON lines.
async fn seed_index(args: config::SeedArgs) -> Result<(), StartError> {
    use std::io::Write;
    check_data_dir(&args.data_dir)?;
    let db = store::Db::open(args.database_url.as_deref(), &args.data_dir).await?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let all = batchboard_sandbox::synthetic::batches(args.count, args.seed);
    let items: Vec<(&batchboard_core::Batch, Option<&str>)> = all
        .iter()
        .map(|(b, name)| (b, Some(name.as_str())))
        .collect();
    db.upsert_bulk(&items, |_, _| i64::MAX / 2).await?;
    for (b, name) in &all {
        let line = serde_json::json!({ "batch": b, "input_file_name": name });
        writeln!(out, "{line}").map_err(StartError::Serve)?;
    }
    out.flush().map_err(StartError::Serve)?;
    Ok(())
}

async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}

/// Opens the sandbox under `<data_dir>/sandbox` with the given options.
fn open_sandbox(
    data_dir: &Path,
    key: secrecy::SecretString,
    opts: &config::SandboxOptions,
) -> Result<batchboard_sandbox::Sandbox, StartError> {
    let dir = data_dir.join("sandbox");
    let faults = opts.faults().map_err(StartError::Config)?;
    let forward = opts.forward().map_err(StartError::Config)?;
    let quirks = opts.quirks().map_err(StartError::Config)?;
    batchboard_sandbox::Sandbox::open(&dir, key, opts.speed(), faults, forward, quirks).map_err(
        |e| StartError::DataDir {
            path: dir.display().to_string(),
            reason: format!("sandbox state: {e}"),
        },
    )
}

/// Starts the sandbox on a loopback port of its own, with a key made for
/// this run, and returns it as the upstream: the dashboard talks to it over
/// HTTP exactly as to any other provider.
async fn start_embedded_sandbox(args: &ServeArgs) -> Result<Upstream, StartError> {
    let key = secrecy::SecretString::from(format!(
        "sk-sandbox-{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ));
    let sb = open_sandbox(&args.data_dir, key.clone(), &args.speed)?;
    let listener = bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    // The watcher's polls of the built-in sandbox are routine: logged at
    // DEBUG, so the terminal of `make run` shows what a person acts on.
    let app = with_request_trace(sb.router(), "sandbox", tracing::Level::DEBUG);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "embedded sandbox stopped");
        }
    });
    let base = url::Url::parse(&format!("http://{addr}/v1")).expect("loopback URL");
    Ok(Upstream::sandbox(base, &key, args)?)
}

/// `batchboard sandbox`: the sandbox alone.
async fn sandbox(args: config::SandboxArgs) -> Result<(), StartError> {
    check_data_dir(&args.data_dir)?;
    let sb = open_sandbox(&args.data_dir, args.api_key.clone(), &args.speed)?;
    let shutdown = shutdown_signal();
    let listener = bind(args.addr).await?;
    let app = with_request_trace(sb.router(), "sandbox", tracing::Level::INFO);
    tracing::info!(addr = %args.addr, "sandbox listening: OpenAI at http://{0}/v1, Azure at http://{0}/azure, Anthropic at http://{0}/anthropic", args.addr);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(StartError::Serve)?;
    if let Err(e) = sb.save_all() {
        tracing::error!(error = %e, "sandbox: cannot save state");
    }
    tracing::info!("sandbox stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM: listened for from this call on, so that it is made
/// before the listener binds (a signal that comes while the server starts
/// stops it cleanly too, instead of killing it); the future ends at the
/// first.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        [SignalKind::interrupt(), SignalKind::terminate()].map(|k| signal(k).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let [int, term] = signals;
            tokio::select! {
                _ = wait(int) => {},
                _ = wait(term) => {},
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown signal received, finishing open requests");
    }
}
