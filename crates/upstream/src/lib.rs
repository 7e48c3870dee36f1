//! Typed HTTP client for the upstream Batch and Files API, with its retry
//! policy. Its wire types come from `batchboard-core`.
//!
//! It must never depend on the server crate: metrics and the clock come in
//! through the [`Observer`] trait.
//!
//! Configured by kind, base URL, key and optional organization / project
//! headers ([`provider::Access`]). The key lives only in the client's
//! default headers, marked sensitive. Each kind's answers are read into the
//! domain's batch by [`dialect`]; Anthropic's own calls are in [`anthropic`].
//! Uploads and downloads stream: no file is held in memory.

// Upstream errors carry the whole OpenAI error (message, type, code, param,
// request id, retry-after) by value; they are rare, so their size is fine.
#![allow(clippy::result_large_err)]

pub mod anthropic;
pub mod dialect;
mod error;
pub mod provider;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde_json::Value;

use url::Url;

use batchboard_core::{Batch, CreateBatch, FileObject, List};
use dialect::Kind;
use provider::Access;

pub use error::UpstreamError;
use error::{api_error, transport};

/// Exponential backoff with jitter (each wait between half and all of the
/// doubled step), never shorter than what the upstream asked for (within a
/// second of it).
#[derive(Debug, Clone)]
pub struct Backoff {
    failures: u32,
    base: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            failures: 0,
            base,
            cap,
        }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The wait before the next attempt, after one more failure.
    pub fn delay(&mut self, asked: Option<Duration>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let ceiling = self
            .base
            .saturating_mul(1 << self.failures.min(16))
            .min(self.cap);
        // Half fixed, half random: spread out, but never a zero wait.
        let jitter = fastrand::f64();
        let d = ceiling.mul_f64(0.5 + 0.5 * jitter);
        asked.map_or(d, |a| a.max(d.min(a + Duration::from_secs(1))))
    }
}

/// Timeouts and retries of upstream calls.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Limit of one API call, from connecting to the last byte of the answer.
    pub call_timeout: Duration,
    /// Attempts after the first for calls that are safe to repeat (list,
    /// retrieve, cancel, file content, upload) and for a create that surely
    /// did not happen.
    pub retries: u32,
    /// First backoff step; doubles per failure, with jitter.
    pub backoff: Duration,
    /// The longest wait between attempts. When the upstream asks for longer
    /// (`retry-after`), the call fails at once with its message instead.
    pub max_wait: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(250),
            max_wait: Duration::from_secs(20),
        }
    }
}

/// What to do after a failed attempt, once the backoff wait is over.
enum Settle<T> {
    /// Make the call again.
    TryAgain,
    /// The call's effect is there after all: this is the answer.
    Done(T),
    /// Return the failure without another attempt.
    GiveUp,
}

#[derive(Clone)]
pub struct Client {
    kind: Kind,
    base: Url,
    /// The base every path goes after (see [`provider::root`]).
    root: String,
    /// Azure's `api-version`, sent on every call of its dated API.
    api_version: Option<String>,
    http: reqwest::Client,
    policy: Policy,
    observer: std::sync::Arc<dyn Observer>,
}

/// What the client tells its owner about each call, and the clock it reads:
/// the server counts calls in its metrics; tests and tools need nothing.
pub trait Observer: Send + Sync + 'static {
    /// One attempt of a call to `route` ended (`error` is `None` on success).
    fn call(&self, _route: &'static str, _error: Option<&UpstreamError>) {}
    /// A call to `route` is made again after a failure.
    fn retry(&self, _route: &'static str) {}
    /// Unix seconds now.
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// Observes nothing, reads the system clock.
pub struct Unobserved;
impl Observer for Unobserved {}

impl Client {
    /// A client of a server speaking OpenAI's API at `base`, taken as given
    /// (the `--upstream-url` of one upstream).
    pub fn new(
        base: Url,
        key: Option<&SecretString>,
        organization: Option<&str>,
        project: Option<&str>,
    ) -> Result<Self, UpstreamError> {
        Self::connect(Access {
            organization,
            project,
            ..Access::compatible(&base, key)
        })
    }

    /// A client of any kind of upstream.
    pub fn connect(access: Access<'_>) -> Result<Self, UpstreamError> {
        let http = reqwest::Client::builder()
            .default_headers(provider::headers(&access)?)
            .user_agent(concat!("batchboard/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| UpstreamError::Config(e.to_string()))?;
        Ok(Self {
            kind: access.kind,
            base: access.base.clone(),
            root: provider::root(&access),
            api_version: access
                .api_version
                .filter(|_| access.kind == Kind::Azure)
                .map(str::to_owned),
            http,
            policy: Policy::default(),
            observer: std::sync::Arc::new(Unobserved),
        })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The same client, reporting its calls to `observer`.
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// The same client with other timeouts and retries.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Runs `call` until it succeeds, fails for good, or the attempts are
    /// spent; only for calls that are safe to repeat. Each attempt is
    /// counted in the metrics under `route`.
    async fn retrying<T, F, Fut>(&self, route: &'static str, call: F) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        self.attempts(route, call, UpstreamError::should_retry, |_| {
            std::future::ready(Settle::TryAgain)
        })
        .await
    }

    /// The one retry loop. After a failure that `worth_retrying` accepts,
    /// waits (backoff, at least the upstream's `retry-after`; gives up when
    /// that is longer than the policy allows), then asks `settle` whether
    /// the failed call is settled some other way before trying again.
    async fn attempts<T, F, Fut, S, SFut>(
        &self,
        route: &'static str,
        mut call: F,
        worth_retrying: impl Fn(&UpstreamError) -> bool,
        mut settle: S,
    ) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
        S: FnMut(UpstreamError) -> SFut,
        SFut: std::future::Future<Output = Settle<T>>,
    {
        let mut backoff = Backoff::new(self.policy.backoff, self.policy.max_wait);
        let mut attempt = 0;
        loop {
            let result = call().await;
            self.observer.call(route, result.as_ref().err());
            let e = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if attempt >= self.policy.retries || !worth_retrying(&e) {
                return Err(e);
            }
            let wait = backoff.delay(e.retry_after());
            if wait > self.policy.max_wait {
                return Err(e);
            }
            tracing::info!(route, attempt = attempt + 1, wait_ms = wait.as_millis() as u64, error = %e, "upstream: trying again");
            tokio::time::sleep(wait).await;
            match settle(e.clone()).await {
                Settle::TryAgain => {}
                Settle::Done(v) => return Ok(v),
                Settle::GiveUp => return Err(e),
            }
            attempt += 1;
            self.observer.retry(route);
        }
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match &self.api_version {
            Some(v) => req.query(&[("api-version", v)]),
            None => req,
        }
    }

    /// `path` (`/batches`) under the base URL, whether the base has a path
    /// or not and ends in a slash or not: `http://host:4000` (as LiteLLM
    /// and SGLang are often configured) gives `http://host:4000/batches`,
    /// not `//batches`, which strict servers refuse.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    /// Where the kind keeps its batches.
    fn batches_path(&self) -> &'static str {
        match self.kind {
            Kind::Anthropic => "/messages/batches",
            _ => "/batches",
        }
    }

    /// A batch as the kind sends it, read into the domain's.
    async fn batch(&self, req: RequestBuilder) -> Result<Batch, UpstreamError> {
        let v: Value = self.json(req).await?;
        dialect::read_batch(self.kind, v).map_err(UpstreamError::Decode)
    }

    /// Refuses a call the kind has no API for.
    fn only_with_files(&self, call: &str) -> Result<(), UpstreamError> {
        if self.kind.message_batches() {
            return Err(UpstreamError::Config(format!(
                "{call}: Anthropic's Message Batches have no files API"
            )));
        }
        Ok(())
    }

    /// Sends; turns an error status into [`UpstreamError::Api`].
    async fn send(&self, req: RequestBuilder) -> Result<Response, UpstreamError> {
        let resp = req.send().await.map_err(transport)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(api_error(resp).await)
    }

    /// Sends with the policy's limit for the whole exchange: right for API
    /// calls, not for uploads (see [`Client::upload_file`]).
    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, UpstreamError> {
        self.json_within(req, self.policy.call_timeout).await
    }

    async fn json_within<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        limit: Duration,
    ) -> Result<T, UpstreamError> {
        let resp = self.send(req.timeout(limit)).await?;
        let bytes = resp.bytes().await.map_err(transport)?;
        serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Decode(e.to_string()))
    }

    pub async fn list_batches(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<List<Batch>, UpstreamError> {
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(a) = after {
            let name = match self.kind {
                Kind::Anthropic => "after_id",
                _ => "after",
            };
            query.push((name, a.to_owned()));
        }
        let path = self.batches_path();
        self.retrying("GET /batches", || async {
            let v: Value = self
                .json(self.request(Method::GET, path).query(&query))
                .await?;
            dialect::read_list(self.kind, v).map_err(UpstreamError::Decode)
        })
        .await
    }

    pub async fn get_batch(&self, id: &str) -> Result<Batch, UpstreamError> {
        let path = format!("{}/{}", self.batches_path(), path_segment(id));
        self.retrying("GET /batches/{id}", || {
            self.batch(self.request(Method::GET, &path))
        })
        .await
    }

    /// Cancelling twice is harmless (the second answers with the batch, or
    /// 409 once it has ended), so this call is retried like a read.
    pub async fn cancel_batch(&self, id: &str) -> Result<Batch, UpstreamError> {
        let path = format!("{}/{}/cancel", self.batches_path(), path_segment(id));
        self.retrying("POST /batches/{id}/cancel", || {
            self.batch(self.request(Method::POST, &path))
        })
        .await
    }

    /// Creates a batch, and never two. A create that surely did not happen
    /// (an answered 429 or other 4xx the upstream advises retrying) is
    /// tried again. After an ambiguous failure (no answer, an unreadable
    /// one, a 5xx) the upstream may have created it anyway: the newest
    /// batches are searched for one made from the same input file (each
    /// create uploads its own file) and that one is returned; only when
    /// there is none is the create tried again. When the search itself
    /// fails, the original error is returned without another attempt.
    pub async fn create_batch(&self, req: &CreateBatch) -> Result<Batch, UpstreamError> {
        self.only_with_files("create a batch from a file")?;
        let started = self.observer.now();
        self.attempts(
            "POST /batches",
            || self.batch(self.request(Method::POST, "/batches").json(req)),
            |e| e.should_retry() || e.is_ambiguous(),
            // The wait before this gave a create still in flight upstream
            // the time to land.
            |e| async move {
                if !e.is_ambiguous() {
                    return Settle::TryAgain;
                }
                match self.find_batch_of_file(&req.input_file_id, started).await {
                    Ok(Some(b)) => {
                        tracing::warn!(batch = %b.id, error = %e, "upstream: the create failed ambiguously but had created the batch; using it");
                        Settle::Done(b)
                    }
                    Ok(None) => Settle::TryAgain,
                    Err(search) => {
                        tracing::warn!(error = %search, "upstream: cannot tell whether the failed create happened; not trying again");
                        Settle::GiveUp
                    }
                }
            },
        )
        .await
    }

    /// The batch made from `input_file_id` among those created since
    /// `since` (unix seconds, with a minute of clock slack), newest first.
    pub async fn find_batch_of_file(
        &self,
        input_file_id: &str,
        since: i64,
    ) -> Result<Option<Batch>, UpstreamError> {
        self.find_batch(since, |b| b.input_file_id == input_file_id)
            .await
    }

    /// The newest batch that `wanted` among those created since `since`
    /// (unix seconds, with a minute of clock slack); at most ten pages.
    pub async fn find_batch(
        &self,
        since: i64,
        wanted: impl Fn(&Batch) -> bool,
    ) -> Result<Option<Batch>, UpstreamError> {
        let mut after: Option<String> = None;
        for _ in 0..10 {
            let page = self.list_batches(after.as_deref(), 100).await?;
            if let Some(b) = page.data.iter().find(|b| wanted(b)) {
                return Ok(Some(b.clone()));
            }
            let older = page.data.last().is_none_or(|b| b.created_at < since - 60);
            if !page.has_more || older {
                return Ok(None);
            }
            after = page.data.last().map(|b| b.id.clone());
        }
        Ok(None)
    }

    pub async fn get_file(&self, id: &str) -> Result<FileObject, UpstreamError> {
        if let Some(file) = anthropic::results_file(self.kind, id) {
            return Ok(file);
        }
        let path = format!("/files/{}", path_segment(id));
        self.retrying("GET /files/{id}", || {
            self.json(self.request(Method::GET, &path))
        })
        .await
    }

    /// Uploads a file from disk, streaming it. Tried again (from the start
    /// of the file) when the transfer breaks or the upstream advises it: at
    /// worst an unused copy of the file is left upstream, never a batch.
    pub async fn upload_file(
        &self,
        path: &std::path::Path,
        filename: &str,
        purpose: &str,
    ) -> Result<FileObject, UpstreamError> {
        self.retrying("POST /files", || self.upload_once(path, filename, purpose))
            .await
    }

    async fn upload_once(
        &self,
        path: &std::path::Path,
        filename: &str,
        purpose: &str,
    ) -> Result<FileObject, UpstreamError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| UpstreamError::Transport(format!("cannot read the upload: {e}")))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| UpstreamError::Transport(e.to_string()))?
            .len();
        let body = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
        self.upload_stream(body, len, filename, purpose).await
    }

    /// Uploads a file as it arrives: `body` yields its bytes, exactly
    /// `len` of them (the multipart request announces its length, so no
    /// chunked encoding is needed upstream). Not tried again: the bytes are
    /// gone once sent. A body that ends in an error aborts the request, so
    /// the upstream never sees the file's end and keeps nothing.
    pub async fn upload_stream<S>(
        &self,
        body: S,
        len: u64,
        filename: &str,
        purpose: &str,
    ) -> Result<FileObject, UpstreamError>
    where
        S: futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    {
        self.only_with_files("upload a file")?;
        // Together names the batch purpose its own way.
        let purpose = match (self.kind, purpose) {
            (Kind::Together, "batch") => "batch-api",
            _ => purpose,
        };
        let part =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body), len)
                .file_name(filename.to_owned())
                .mime_str("application/jsonl")
                .map_err(|e| UpstreamError::Config(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .text("purpose", purpose.to_owned())
            .part("file", part);
        // 200 MB over a slow link takes a while: allow an hour, not a minute.
        self.json_within(
            self.request(Method::POST, "/files").multipart(form),
            Duration::from_secs(3600),
        )
        .await
    }

    /// `DELETE /files/{id}`: removes a file Batchboard uploaded but did not
    /// use (its batch could not be created).
    pub async fn delete_file(&self, id: &str) -> Result<(), UpstreamError> {
        self.only_with_files("delete a file")?;
        let path = format!("/files/{}", path_segment(id));
        self.retrying("DELETE /files/{id}", || {
            self.send(self.request(Method::DELETE, &path))
        })
        .await
        .map(|_| ())
    }

    /// Starts a download of a file's content (retried until the headers
    /// arrive); the caller streams the body and must treat a broken body as
    /// a failed download.
    pub async fn file_content(&self, id: &str) -> Result<Response, UpstreamError> {
        if self.kind.message_batches() {
            return self.anthropic_results(id).await;
        }
        let path = format!("/files/{}/content", path_segment(id));
        self.retrying("GET /files/{id}/content", || {
            self.send(self.request(Method::GET, &path))
        })
        .await
    }

    /// `GET /batches?limit=1`: answers, speaks the kind's API, accepts the key.
    pub async fn probe(&self) -> Result<(), UpstreamError> {
        let req = self
            .request(Method::GET, self.batches_path())
            .query(&[("limit", "1")])
            .timeout(Duration::from_secs(10));
        self.send(req).await.map(|_| ())
    }
}

/// Ids go into paths: keep them to one segment.
fn path_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, should_retry: Option<bool>) -> UpstreamError {
        UpstreamError::Api {
            status,
            message: "m".into(),
            kind: None,
            code: None,
            param: None,
            request_id: None,
            retry_after: None,
            should_retry,
        }
    }

    #[test]
    fn any_form_of_base_url_gives_one_slash_before_the_path() {
        for (base, want) in [
            ("http://host:4000", "http://host:4000/batches"),
            ("http://host:4000/", "http://host:4000/batches"),
            (
                "https://api.openai.com/v1",
                "https://api.openai.com/v1/batches",
            ),
            (
                "https://api.openai.com/v1/",
                "https://api.openai.com/v1/batches",
            ),
        ] {
            let c = Client::new(Url::parse(base).unwrap(), None, None, None).unwrap();
            assert_eq!(c.url("/batches"), want, "{base}");
        }
    }

    #[test]
    fn retry_classification_follows_status_advice_and_kind() {
        for s in [408, 429, 500, 502, 503] {
            assert!(api(s, None).should_retry(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 422] {
            assert!(!api(s, None).should_retry(), "{s}");
        }
        // The upstream's own advice wins over the status code.
        assert!(!api(503, Some(false)).should_retry());
        assert!(api(400, Some(true)).should_retry());
        assert!(UpstreamError::Transport("reset".into()).should_retry());
        assert!(UpstreamError::Decode("cut".into()).should_retry());
        assert!(!UpstreamError::Config("bad key".into()).should_retry());
    }

    #[test]
    fn only_answers_that_say_no_are_unambiguous() {
        // A create may have happened when the answer is lost, cut or a 5xx.
        assert!(api(500, None).is_ambiguous());
        assert!(UpstreamError::Transport("timed out".into()).is_ambiguous());
        assert!(UpstreamError::Decode("cut".into()).is_ambiguous());
        // A 4xx, 429 included, means it did not.
        assert!(!api(429, None).is_ambiguous());
        assert!(!api(400, None).is_ambiguous());
        assert_eq!(api(429, None).outcome(), "429");
        assert_eq!(
            UpstreamError::Transport(String::new()).outcome(),
            "transport"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        let mut b = Backoff::new(base, cap);
        for failure in 1..=8u32 {
            let ceiling = (base * 2u32.pow(failure)).min(cap);
            let d = b.delay(None);
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{failure}: {d:?} vs {ceiling:?}"
            );
        }
        b.reset();
        assert!(b.delay(None) <= base * 2, "reset starts over");
    }

    #[test]
    fn backoff_waits_at_least_what_the_upstream_asked() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let asked = Duration::from_secs(5);
        for _ in 0..5 {
            let d = b.delay(Some(asked));
            assert!(d >= asked && d <= asked + Duration::from_secs(1), "{d:?}");
        }
        // Asked for less than the step: the step wins (but stays within a
        // second of what was asked).
        let mut b = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
        let d = b.delay(Some(Duration::from_millis(10)));
        assert!(
            d >= Duration::from_millis(10) && d <= Duration::from_millis(1010),
            "{d:?}"
        );
    }
}
