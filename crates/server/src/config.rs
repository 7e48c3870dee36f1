//! Command line and environment configuration.
//!
//! Every option can be given as a flag or as an environment variable; `--help`
//! lists both. Secrets are held in [`SecretString`] so that neither `Debug`
//! output nor logs can reveal them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;
use url::Url;

/// The default upstream once an API key is configured.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

#[derive(Debug, Parser)]
#[command(
    name = "batchboard",
    version,
    about = "A team dashboard for OpenAI's Batch API",
    long_about = "Batchboard: a self-hosted web dashboard through which a team uploads JSONL \
                  request files, creates batches on OpenAI's Batch API (or a compatible \
                  provider), watches them and downloads the results. The server alone holds \
                  the API key.\n\nWithout a subcommand, `batchboard` runs `serve`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Options of `serve`, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: ServeArgs,
}

// Parsed once at start-up: the size of the variants does not matter.
/// What the outgoing webhook sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WebhookFormat {
    Slack,
    Json,
}

/// A `whsec_…` secret (base64 after the prefix).
fn parse_webhook_secret(s: &str) -> Result<SecretString, String> {
    if crate::webhooks_in::sign(s.trim(), "check", 0, b"").is_err() {
        return Err("not a whsec_ secret: `whsec_` and a base64 key".into());
    }
    Ok(SecretString::from(s.trim().to_owned()))
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard (the default).
    Serve(ServeArgs),
    /// Serve only the sandbox: an OpenAI-compatible Files + Batches API with
    /// deterministic built-in models, at http://ADDR/v1.
    Sandbox(SandboxArgs),
    /// Manage the local accounts in the users file.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage personal access tokens for the OpenAI-compatible /v1.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print every route the dashboard serves, as JSON (for tests and audits).
    #[command(hide = true)]
    Routes,
    /// Fill the batch index with made-up batches and print them as JSON
    /// lines (for tests and benchmarks).
    #[command(hide = true)]
    IndexSeed(SeedArgs),
    /// Write a made-up valid request file (for tests and benchmarks) and
    /// print the custom_ids of the requests made to fail, one per line.
    #[command(hide = true)]
    ExampleFile(ExampleArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ExampleArgs {
    #[arg(long, default_value_t = 1000)]
    pub requests: u64,
    /// Total size to aim for, in MB (10^6 bytes).
    #[arg(long, default_value_t = 1.0)]
    pub megabytes: f64,
    /// Every n-th request gets an empty `messages`, which the upstream refuses.
    #[arg(long)]
    pub fail_every: Option<u64>,
    #[arg(long, default_value = "gpt-4o-mini")]
    pub model: String,
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, env = "BATCHBOARD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Where the users file is.
#[derive(Debug, Clone, Args)]
pub struct UsersFileArgs {
    /// The users file (TOML, argon2id password hashes) [default: DATA_DIR/users.toml].
    #[arg(long, env = "BATCHBOARD_USERS_FILE")]
    pub users_file: Option<PathBuf>,

    /// Directory for Batchboard's own state (created if missing; must be writable).
    #[arg(long, env = "BATCHBOARD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

impl UsersFileArgs {
    pub fn path(&self) -> PathBuf {
        self.users_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("users.toml"))
    }
}

/// Where the tokens are: the database, and the users file (for roles).
#[derive(Debug, Clone, Args)]
pub struct TokenStoreArgs {
    #[command(flatten)]
    pub users: UsersFileArgs,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for a user and print it (shown this once).
    Create {
        /// Whose token it is (an account of the users file).
        #[arg(long)]
        user: String,
        /// What it is for ("nightly eval script").
        #[arg(long)]
        name: String,
        /// Its role (default: the user's; never higher).
        #[arg(long, value_enum)]
        role: Option<batchboard_core::access::Role>,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_days: Option<u32>,
        /// The upstream its `/v1` calls go to when they name none (default:
        /// the first).
        #[arg(long)]
        upstream: Option<String>,
        #[command(flatten)]
        store: TokenStoreArgs,
    },
    /// List tokens (of one user, or everyone's) as JSON lines, never the secrets.
    List {
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        store: TokenStoreArgs,
    },
    /// Revoke a token by its id (the part after `bb_`, before the second `_`).
    Revoke {
        id: String,
        #[command(flatten)]
        store: TokenStoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account. Prints a generated password unless --password-stdin.
    Add {
        name: String,
        /// viewer: see and download; operator: also create and cancel; admin: also the audit log.
        #[arg(long, value_enum, default_value = "viewer")]
        role: batchboard_core::access::Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// Set a new password. Prints a generated one unless --password-stdin.
    Passwd {
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// Change an account's role.
    SetRole {
        name: String,
        #[arg(value_enum)]
        role: batchboard_core::access::Role,
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// List the accounts and their roles.
    List {
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// End every session of an account (signed in anywhere, on any
    /// replica) at its next request; the password stays.
    Revoke {
        name: String,
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// List an account's signed-in sessions: address, signed in, last seen.
    Sessions {
        name: String,
        #[command(flatten)]
        auth: AuthArgs,
        /// Directory for Batchboard's own state.
        #[arg(long, env = "BATCHBOARD_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// Postgres instead of SQLite in the data directory.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Remove an account; its sessions end at their next request.
    Remove {
        name: String,
        #[command(flatten)]
        file: UsersFileArgs,
    },
}

/// How people sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Accounts in the users file, with a sign-in page.
    Local,
    /// A trusted reverse proxy (oauth2-proxy, …) names the user in a header.
    Proxy,
}

/// When the session cookie carries `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CookieSecure {
    /// When the request came over HTTPS, as a trusted proxy's
    /// `X-Forwarded-Proto: https` says (or TLS reached us directly).
    Auto,
    Always,
    Never,
}

/// Sign-in, sessions and roles.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// How people sign in.
    #[arg(long, env = "BATCHBOARD_AUTH", value_enum, default_value = "local")]
    pub auth: AuthMode,

    /// The users file (TOML, argon2id password hashes) [default: DATA_DIR/users.toml].
    #[arg(long, env = "BATCHBOARD_USERS_FILE")]
    pub users_file: Option<PathBuf>,

    /// Proxy sign-in: the header holding the user's email.
    #[arg(
        long,
        env = "BATCHBOARD_PROXY_USER_HEADER",
        default_value = "x-forwarded-email"
    )]
    pub proxy_user_header: axum::http::HeaderName,

    /// Proxy sign-in: role of people not listed in the users file (`none`
    /// refuses them).
    #[arg(
        long,
        env = "BATCHBOARD_PROXY_DEFAULT_ROLE",
        value_enum,
        default_value = "viewer"
    )]
    pub proxy_default_role: DefaultRole,

    /// Addresses (CIDR) of reverse proxies whose X-Forwarded-* and user
    /// headers are believed. Comma-separated.
    #[arg(
        long,
        env = "BATCHBOARD_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = "127.0.0.1/32,::1/128"
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// When the session cookie is marked Secure.
    #[arg(
        long,
        env = "BATCHBOARD_COOKIE_SECURE",
        value_enum,
        default_value = "auto"
    )]
    pub cookie_secure: CookieSecure,

    /// A session ends after this many minutes without a request.
    #[arg(long, env = "BATCHBOARD_SESSION_IDLE_MINUTES", default_value_t = 720,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub session_idle_minutes: u32,

    /// A session ends this many hours after sign-in, however active.
    #[arg(long, env = "BATCHBOARD_SESSION_MAX_HOURS", default_value_t = 168,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub session_max_hours: u32,

    /// Failed sign-ins allowed per account (and 4× that per address) in 15
    /// minutes before further attempts are refused.
    #[arg(long, env = "BATCHBOARD_LOGIN_ATTEMPTS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub login_attempts: u32,
}

/// The role of proxy-signed-in people not in the users file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DefaultRole {
    Viewer,
    Operator,
    Admin,
    /// Refuse them.
    None,
}

impl DefaultRole {
    pub fn role(self) -> Option<batchboard_core::access::Role> {
        use batchboard_core::access::Role;
        match self {
            Self::Viewer => Some(Role::Viewer),
            Self::Operator => Some(Role::Operator),
            Self::Admin => Some(Role::Admin),
            Self::None => None,
        }
    }
}

/// How the sandbox works: its speed, injected faults, and forwarding.
#[derive(Debug, Clone, Args)]
pub struct SandboxOptions {
    /// Sandbox: requests executed per second in each batch.
    #[arg(long, env = "BATCHBOARD_SANDBOX_RPS", default_value_t = 5.0, value_parser = parse_rate)]
    pub sandbox_rps: f64,

    /// Sandbox: how long a batch stays `validating`, in milliseconds.
    #[arg(long, env = "BATCHBOARD_SANDBOX_VALIDATION_MS", default_value_t = 2000)]
    pub sandbox_validation_ms: u64,

    /// Sandbox: how long a batch stays `finalizing`, in milliseconds.
    #[arg(long, env = "BATCHBOARD_SANDBOX_FINALIZING_MS", default_value_t = 2000)]
    pub sandbox_finalizing_ms: u64,

    /// Sandbox, for tests: inject a fault, e.g. "GET /v1/batches: status=429,
    /// retry_after=2, times=3" (options: status, retry_after, latency_ms, drop,
    /// times). Repeat for several; in the variable, separate them with ';'.
    #[arg(
        long = "sandbox-fault",
        env = "BATCHBOARD_SANDBOX_FAULTS",
        value_delimiter = ';'
    )]
    pub sandbox_faults: Vec<String>,

    /// Sandbox: send each request to this OpenAI-compatible server (e.g.
    /// http://127.0.0.1:8000/v1) instead of the built-in models.
    #[arg(long, env = "BATCHBOARD_SANDBOX_FORWARD_URL", value_parser = parse_base_url)]
    pub forward_url: Option<Url>,

    /// Sandbox: the key sent to the forward server, if it needs one.
    #[arg(long, env = "BATCHBOARD_SANDBOX_FORWARD_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub forward_key: Option<SecretString>,

    /// Sandbox: requests in flight to the forward server at once, per batch.
    #[arg(long, env = "BATCHBOARD_SANDBOX_FORWARD_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub forward_concurrency: u16,

    /// Sandbox: an enqueued-token limit, MODEL=TOKENS (repeatable; ';' in
    /// the variable): a batch that would exceed it fails validation with
    /// `token_limit_exceeded`, as OpenAI's does.
    #[arg(
        long = "sandbox-enqueued-tokens",
        env = "BATCHBOARD_SANDBOX_ENQUEUED_TOKENS",
        value_delimiter = ';'
    )]
    pub sandbox_enqueued_tokens: Vec<String>,

    /// Sandbox: requests that fail instead of running, by status and rate
    /// (`429=0.02,500=0.01`), to exercise retries.
    #[arg(long, env = "BATCHBOARD_SANDBOX_REQUEST_FAILURES")]
    pub sandbox_request_failures: Option<String>,

    /// Sandbox: batches carry no `usage` (as older batches and some
    /// providers); result lines still report each request's.
    #[arg(long, env = "BATCHBOARD_SANDBOX_NO_BATCH_USAGE")]
    pub sandbox_no_batch_usage: bool,
}

impl SandboxOptions {
    /// The fault rules, checked.
    pub fn faults(&self) -> Result<Vec<batchboard_sandbox::faults::Fault>, String> {
        self.sandbox_faults
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                batchboard_sandbox::faults::Fault::parse(s)
                    .map_err(|e| format!("--sandbox-fault '{s}': {e}"))
            })
            .collect()
    }

    /// The forward target, if one is set.
    pub fn forward(&self) -> Result<Option<batchboard_sandbox::forward::Forward>, String> {
        self.forward_url
            .clone()
            .map(|url| {
                batchboard_sandbox::forward::Forward::new(
                    url,
                    self.forward_key.clone(),
                    usize::from(self.forward_concurrency),
                )
                .map_err(|e| format!("--forward-url: {e}"))
            })
            .transpose()
    }

    /// The limits and failures the sandbox imitates, checked.
    pub fn quirks(&self) -> Result<batchboard_sandbox::quirks::Quirks, String> {
        use batchboard_sandbox::quirks::Quirks;
        let mut q = Quirks::default();
        for s in self
            .sandbox_enqueued_tokens
            .iter()
            .filter(|s| !s.trim().is_empty())
        {
            let (model, n) =
                Quirks::parse_enqueued(s).map_err(|e| format!("--sandbox-enqueued-tokens: {e}"))?;
            q.enqueued_tokens.insert(model, n);
        }
        if let Some(s) = &self.sandbox_request_failures {
            q.request_failures = Quirks::parse_failures(s)
                .map_err(|e| format!("--sandbox-request-failures: {e}"))?;
        }
        q.no_batch_usage = self.sandbox_no_batch_usage;
        Ok(q)
    }

    pub fn speed(&self) -> batchboard_sandbox::Speed {
        batchboard_sandbox::Speed {
            requests_per_second: self.sandbox_rps,
            validation_delay: std::time::Duration::from_millis(self.sandbox_validation_ms),
            finalizing_delay: std::time::Duration::from_millis(self.sandbox_finalizing_ms),
        }
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err("must be a number above 0".into()),
    }
}

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "BATCHBOARD_SANDBOX_ADDR",
        default_value = "127.0.0.1:8089"
    )]
    pub addr: SocketAddr,

    /// The key clients must send as `Authorization: Bearer KEY`.
    #[arg(long, env = "BATCHBOARD_SANDBOX_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub api_key: SecretString,

    /// Directory for the sandbox's files and state (created if missing).
    #[arg(long, env = "BATCHBOARD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    #[command(flatten)]
    pub speed: SandboxOptions,

    #[command(flatten)]
    pub log: LogArgs,
}

/// Logging options, shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(
        long,
        env = "BATCHBOARD_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BATCHBOARD_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Base URL of the OpenAI-compatible upstream API [default: https://api.openai.com/v1
    /// when an API key is set; the built-in sandbox when neither is set].
    #[arg(long, env = "BATCHBOARD_UPSTREAM_URL", value_parser = parse_base_url)]
    pub upstream_url: Option<Url>,

    /// API key sent to the upstream. Never printed, logged or sent to a browser.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub api_key: Option<SecretString>,

    /// The `whsec_…` secret the upstream signs its webhooks with (OpenAI's
    /// webhook endpoint pointed at https://HOST/webhooks/default). Never
    /// printed or logged.
    #[arg(long, env = "BATCHBOARD_UPSTREAM_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub upstream_webhook_secret: Option<SecretString>,

    /// OpenAI organization id, sent as the `OpenAI-Organization` header.
    #[arg(long, env = "OPENAI_ORG_ID")]
    pub organization: Option<String>,

    /// OpenAI project id, sent as the `OpenAI-Project` header.
    #[arg(long, env = "OPENAI_PROJECT_ID")]
    pub project: Option<String>,

    /// More upstreams (Azure OpenAI, Groq, Together, Anthropic, other
    /// OpenAI-compatible servers), each named, beside the one above; see
    /// the README's "Upstreams" [default: DATA_DIR/upstreams.toml, if it
    /// exists].
    #[arg(long, env = "BATCHBOARD_UPSTREAMS_FILE")]
    pub upstreams_file: Option<PathBuf>,

    /// Directory for Batchboard's own state (created if missing; must be writable).
    #[arg(long, env = "BATCHBOARD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Directory holding the built site (`pkg/` with the WASM, JS and CSS).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Database for sessions and the audit log: postgres://… (several
    /// replicas share it) [default: SQLite at DATA_DIR/batchboard.db].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    #[command(flatten)]
    pub auth: AuthArgs,

    /// How often the watcher reads the newest page of the upstream's batch
    /// list, in milliseconds (unfinished batches are refreshed on their own
    /// schedule, every 2-5 s).
    #[arg(long, env = "BATCHBOARD_WATCH_INTERVAL_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(200..))]
    pub watch_interval_ms: u64,

    /// Batch prices for cost estimates: a TOML file with `source = "…"` and
    /// `[models."<model or prefix>"] input = <USD per 1M tokens>, output = …`
    /// [default: a built-in table of OpenAI batch prices].
    #[arg(long, env = "BATCHBOARD_PRICE_TABLE")]
    pub price_table: Option<PathBuf>,

    /// Monthly budgets per user and per team, in US dollars: a TOML file
    /// with `[budgets.users]` and `[budgets.teams]`, re-read when it
    /// changes; admins edit it on the Budgets page [default:
    /// DATA_DIR/budgets.toml].
    #[arg(long, env = "BATCHBOARD_BUDGETS_FILE")]
    pub budgets_file: Option<PathBuf>,

    /// The metadata key that names a batch's team (spend by team, team
    /// budgets).
    #[arg(long, env = "BATCHBOARD_TEAM_KEY", default_value = "team")]
    pub team_key: String,

    /// Limit of one upstream API call (connect, send, whole answer), in
    /// milliseconds. Uploads get an hour; downloads fail after this long
    /// without a byte.
    #[arg(long, env = "BATCHBOARD_UPSTREAM_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub upstream_timeout_ms: u64,

    /// Further attempts of an upstream call that failed on a rate limit, a
    /// server error or a broken connection (with jittered exponential
    /// backoff, honouring retry-after); a create is only tried again once it
    /// is certain it did not happen.
    #[arg(long, env = "BATCHBOARD_UPSTREAM_RETRIES", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(0..=10))]
    pub upstream_retries: u32,

    /// Uploads (new batches) received at once; more are refused with 503
    /// until one ends.
    #[arg(long, env = "BATCHBOARD_MAX_UPLOADS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_uploads: u32,

    /// Pages rendered at once (default: twice the CPU cores); the others
    /// wait in line, first come first served. Fewer at once keeps the
    /// slowest pages near the median under load, and memory low.
    #[arg(long, env = "BATCHBOARD_MAX_RENDERS",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_renders: Option<u32>,

    /// Requests a personal access token may make to `/v1` in a minute (per
    /// replica); more are answered 429 with `retry-after`.
    #[arg(long, env = "BATCHBOARD_TOKEN_REQUESTS_PER_MINUTE", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub token_requests_per_minute: u32,

    /// Disk space the results spools (copies of finished batches' files,
    /// for the results table and merged downloads) may take in all, in GB;
    /// the least recently used go first.
    #[arg(long, env = "BATCHBOARD_SPOOL_MAX_GB", default_value_t = 20.0,
          value_parser = parse_positive_gb)]
    pub spool_max_gb: f64,

    /// Days the audit log keeps its entries.
    #[arg(long, env = "BATCHBOARD_AUDIT_RETENTION_DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub audit_retention_days: u32,

    /// Connections served at once; more wait in the listen queue until one
    /// closes (each open page's live stream holds one).
    #[arg(long, env = "BATCHBOARD_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Live-update streams one user may hold open on this server (a browser
    /// holds one, whatever its number of tabs).
    #[arg(long, env = "BATCHBOARD_MAX_STREAMS_PER_USER", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_streams_per_user: u32,

    /// Seconds a client may take to send its request headers, and may stay
    /// silent in the middle of a request body, before its connection is closed.
    #[arg(long, env = "BATCHBOARD_READ_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub read_timeout_secs: u64,

    /// Addresses (CIDR, comma-separated) allowed to read Prometheus metrics
    /// at /metrics; empty (the default) serves them to no one.
    #[arg(long, env = "BATCHBOARD_METRICS_ALLOW", value_delimiter = ',')]
    pub metrics_allow: Vec<ipnet::IpNet>,

    /// POST a Slack-compatible JSON message here when a batch finishes.
    #[arg(long, env = "BATCHBOARD_WEBHOOK_URL", hide_env_values = true, value_parser = parse_base_url)]
    pub webhook_url: Option<Url>,

    /// Signs the webhook's messages as Standard Webhooks do (`webhook-id`,
    /// `webhook-timestamp`, `webhook-signature`) with this `whsec_…` secret,
    /// so that receivers can check they come from Batchboard.
    #[arg(long, env = "BATCHBOARD_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_webhook_secret)]
    pub webhook_secret: Option<SecretString>,

    /// The webhook's body: `slack` (a Slack-compatible message, the
    /// default) or `json` (an event like OpenAI's: `{"object": "event",
    /// "type": "batch.completed", "data": {"id": …}}`).
    #[arg(long, env = "BATCHBOARD_WEBHOOK_FORMAT", value_enum, default_value_t = WebhookFormat::Slack)]
    pub webhook_format: WebhookFormat,

    /// The language of webhook messages: a code of a file in `locales/`
    /// (`en`, `ko`).
    #[arg(long, env = "BATCHBOARD_WEBHOOK_LOCALE", default_value = "en",
          value_parser = parse_locale)]
    pub webhook_locale: String,

    /// The dashboard's address as people reach it (for links in webhook messages).
    #[arg(long, env = "BATCHBOARD_PUBLIC_URL", value_parser = parse_base_url)]
    pub public_url: Option<Url>,

    #[command(flatten)]
    pub log: LogArgs,

    /// Speed of the built-in sandbox (used when no upstream is configured).
    #[command(flatten)]
    pub speed: SandboxOptions,
}

fn parse_secret(s: &str) -> Result<SecretString, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(SecretString::from(s.to_owned()))
}

/// A language of `locales/` (`--webhook-locale`).
fn parse_locale(s: &str) -> Result<String, String> {
    batchboard_core::i18n::supported(s)
        .map(str::to_owned)
        .ok_or_else(|| {
            let known: Vec<&str> = batchboard_core::i18n::LOCALES
                .iter()
                .map(|(c, _)| *c)
                .collect();
            format!("'{s}' is not one of the languages: {}", known.join(", "))
        })
}

/// An upstream base URL: absolute http(s), no query or fragment. A trailing
/// slash is dropped so that paths can be appended as `{base}/batches`.
pub fn parse_base_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme must be http or https, not {}",
            url.scheme()
        ));
    }
    if url.host().is_none() {
        return Err("the URL has no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query or fragment".into());
    }
    let trimmed = url.as_str().trim_end_matches('/').to_owned();
    Url::parse(&trimmed).map_err(|e| format!("not a URL ({e})"))
}

impl Cli {
    /// Parses the command line; on a usage error prints one line naming the
    /// option and exits with status 2. `--help` and `--version` exit 0.
    pub fn parse_or_exit() -> Self {
        match Self::try_parse() {
            Ok(cli) => cli,
            Err(e) => exit_with_clap_error(e),
        }
    }

    /// The arguments of the command to run.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

fn exit_with_clap_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            let text = e.to_string();
            let line = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("invalid arguments");
            let line = line.strip_prefix("error: ").unwrap_or(line);
            eprintln!("batchboard: {line}");
            std::process::exit(2);
        }
    }
}

fn parse_positive_gb(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(gb) if gb > 0.0 && gb.is_finite() => Ok(gb),
        _ => Err(format!(
            "{s}: a number of gigabytes above 0, such as 20 or 0.5"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_is_normalised_and_checked() {
        assert_eq!(
            parse_base_url("https://api.openai.com/v1/")
                .unwrap()
                .as_str(),
            "https://api.openai.com/v1"
        );
        assert!(parse_base_url("ftp://x/v1").is_err());
        assert!(parse_base_url("not a url").is_err());
        assert!(parse_base_url("http://h/v1?x=1").is_err());
    }

    #[test]
    fn secret_is_not_in_debug_output() {
        let cli = Cli::try_parse_from(["batchboard", "--api-key", "sk-very-secret"]).unwrap();
        let dbg = format!("{cli:?}");
        assert!(!dbg.contains("sk-very-secret"), "{dbg}");
    }

    #[test]
    fn serve_subcommand_and_default_agree() {
        let a = Cli::try_parse_from(["batchboard", "--addr", "127.0.0.1:4000"]).unwrap();
        let b = Cli::try_parse_from(["batchboard", "serve", "--addr", "127.0.0.1:4000"]).unwrap();
        match (a.into_command(), b.into_command()) {
            (Command::Serve(a), Command::Serve(b)) => assert_eq!(a.addr, b.addr),
            other => panic!("expected serve twice, got {other:?}"),
        }
    }
}
