//! Jobs larger than one batch (issue 20): where a file's requests are cut
//! into parts that each fit an upstream's limits: requests per batch, bytes
//! per file and, when the model has one, the enqueued-token limit (a part's
//! estimated input tokens must fit under it on its own; the scheduler then
//! waits until what is enqueued leaves room). Lines keep their order within
//! and across parts. No I/O: the server feeds each line's size and token
//! estimate as it streams the file.

use serde::{Deserialize, Serialize};

/// What one job's file may hold.
pub const MAX_JOB_REQUESTS: u64 = 2_000_000;
pub const MAX_JOB_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Attempts of a request when the form does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const MAX_ATTEMPTS: u32 = 10;
/// The metadata every part's batch carries: its job and `part`/`attempt`.
pub const META_JOB: &str = "batchboard_job";
pub const META_PART: &str = "batchboard_part";

/// Whether a failed request is worth sending again: a timeout, a conflict,
/// a rate limit or a server error in its result line, an expired batch, or
/// no result at all (the batch ended before it ran). Other 4xx are the
/// request's own fault and final.
pub fn is_retryable(status_code: Option<u16>, error_code: Option<&str>) -> bool {
    match status_code {
        Some(s) => matches!(s, 408 | 409 | 429) || s >= 500,
        None => matches!(
            error_code,
            None | Some(
                "batch_expired" | "batch_cancelled" | "rate_limit_exceeded" | "server_error"
            )
        ),
    }
}

/// A job as pages show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    /// The upstream's shown name.
    pub upstream: String,
    pub endpoint: String,
    pub model: Option<String>,
    pub filename: String,
    /// `running`, `completed`, `cancelling`, `cancelled`.
    pub status: String,
    pub created_by: String,
    pub created_at: i64,
    pub ended_at: Option<i64>,
    pub requests: u64,
    pub tokens: u64,
    pub max_attempts: u32,
    /// Requests that succeeded, failed for good, and are still to run.
    pub ok: u64,
    pub failed: u64,
    pub pending: u64,
    /// Requests a second or later attempt is under way for.
    pub retrying: u64,
    /// Tokens the parts' batches have used so far (their `usage`).
    pub input_tokens_used: u64,
    pub output_tokens_used: u64,
    pub parts: Vec<PartView>,
}

/// One part of a job: one batch at a time (again after a wait for the
/// enqueued-token limit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartView {
    pub part: u32,
    pub attempt: u32,
    /// The part it retries the failures of.
    pub retry_of: Option<u32>,
    /// Lines of the job's file (a retry's are among its first part's).
    pub first_line: u64,
    pub last_line: u64,
    pub requests: u64,
    pub tokens: u64,
    /// `queued`, `submitting`, `running`, `done`, `failed`, `cancelled`.
    pub state: String,
    /// Its batch, when one was made (the last, after waits).
    pub batch_id: Option<String>,
    /// Times it waited for the enqueued-token limit.
    pub waits: u32,
    /// After it ended: requests that succeeded, failed, and were sent again.
    pub ok: u64,
    pub failed: u64,
    pub retried: u64,
    pub error: Option<String>,
}

impl JobView {
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "running" | "cancelling")
    }
}

/// How many parts a file of `requests`, `bytes` and estimated `tokens`
/// needs at least (what New batch offers as a job).
pub fn parts_needed(requests: u64, bytes: u64, tokens: u64, limits: PartLimits) -> u64 {
    let by = |n: u64, max: u64| n.div_ceil(max.max(1));
    by(requests, limits.max_requests)
        .max(by(bytes, limits.max_bytes))
        .max(limits.max_tokens.map_or(1, |m| by(tokens, m)))
        .max(1)
}

/// What one part may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLimits {
    pub max_requests: u64,
    /// Bytes of the part's file (lines with their line endings).
    pub max_bytes: u64,
    /// Estimated input tokens (the model's enqueued-token limit), if any.
    pub max_tokens: Option<u64>,
}

/// A part's share of its upstream's enqueued-token limit: parts a little
/// under it, so that an estimate that differs from the upstream's own
/// still lets each part run alone.
const TOKEN_SHARE: f64 = 0.9;

impl PartLimits {
    /// What one part may hold on an upstream that offers `offer`, for
    /// requests to `model`.
    pub fn of(offer: &crate::limits::Offer, model: Option<&str>) -> Self {
        Self {
            max_requests: offer.max_requests(),
            max_bytes: offer.max_bytes(),
            max_tokens: model
                .and_then(|m| offer.enqueued_tokens.get(m))
                .map(|t| (*t as f64 * TOKEN_SHARE) as u64),
        }
    }
}

/// One part of a job: a run of the file's requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartPlan {
    /// The file's line number of the part's first request (1-based).
    pub first_line: u64,
    /// The line number of its last request.
    pub last_line: u64,
    pub requests: u64,
    pub bytes: u64,
    pub tokens: u64,
}

/// A request that cannot go in any part: alone it is over a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what} {value} is over the limit of {limit} for one batch")]
pub struct TooLargeAlone {
    pub line: u64,
    /// `bytes` or `tokens`.
    pub what: &'static str,
    pub value: u64,
    pub limit: u64,
}

/// Cuts a file into parts as its requests arrive, in order.
#[derive(Debug, Clone)]
pub struct Splitter {
    limits: PartLimits,
    open: Option<PartPlan>,
    done: Vec<PartPlan>,
}

impl Splitter {
    pub fn new(limits: PartLimits) -> Self {
        Self {
            limits,
            open: None,
            done: Vec::new(),
        }
    }

    /// The request on line `line` (its `bytes` with the line ending, its
    /// estimated input `tokens`): added to the open part, or it starts the
    /// next one when it would not fit.
    pub fn push(&mut self, line: u64, bytes: u64, tokens: u64) -> Result<(), TooLargeAlone> {
        let l = self.limits;
        if bytes > l.max_bytes {
            return Err(TooLargeAlone {
                line,
                what: "bytes",
                value: bytes,
                limit: l.max_bytes,
            });
        }
        if let Some(max) = l.max_tokens.filter(|m| tokens > *m) {
            return Err(TooLargeAlone {
                line,
                what: "tokens",
                value: tokens,
                limit: max,
            });
        }
        let fits = self.open.is_some_and(|p| {
            p.requests < l.max_requests
                && p.bytes + bytes <= l.max_bytes
                && l.max_tokens.is_none_or(|m| p.tokens + tokens <= m)
        });
        if !fits {
            if let Some(p) = self.open.take() {
                self.done.push(p);
            }
            self.open = Some(PartPlan {
                first_line: line,
                ..PartPlan::default()
            });
        }
        if let Some(p) = self.open.as_mut() {
            p.last_line = line;
            p.requests += 1;
            p.bytes += bytes;
            p.tokens += tokens;
        }
        Ok(())
    }

    /// The parts, in file order.
    pub fn finish(mut self) -> Vec<PartPlan> {
        if let Some(p) = self.open.take() {
            self.done.push(p);
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(limits: PartLimits, lines: &[(u64, u64)]) -> Result<Vec<PartPlan>, TooLargeAlone> {
        let mut s = Splitter::new(limits);
        for (i, (bytes, tokens)) in lines.iter().enumerate() {
            s.push(i as u64 + 1, *bytes, *tokens)?;
        }
        Ok(s.finish())
    }

    #[test]
    fn parts_keep_order_and_each_fits_every_limit() {
        let limits = PartLimits {
            max_requests: 3,
            max_bytes: 100,
            max_tokens: Some(50),
        };
        // Requests cut by count, then by bytes, then by tokens.
        let lines = [
            (10, 5),
            (10, 5),
            (10, 5),
            (10, 5),
            (60, 5),
            (50, 5),
            (10, 30),
            (10, 30),
        ];
        let parts = split(limits, &lines).unwrap();
        let runs: Vec<(u64, u64)> = parts.iter().map(|p| (p.first_line, p.last_line)).collect();
        assert_eq!(runs, [(1, 3), (4, 5), (6, 7), (8, 8)]);
        for p in &parts {
            assert!(p.requests <= 3 && p.bytes <= 100 && p.tokens <= 50, "{p:?}");
        }
        assert_eq!(
            parts.iter().map(|p| p.requests).sum::<u64>(),
            lines.len() as u64
        );
    }

    #[test]
    fn what_is_retried_and_how_many_parts_a_file_needs() {
        assert!(is_retryable(Some(429), None));
        assert!(is_retryable(Some(503), Some("server_error")));
        assert!(is_retryable(None, Some("batch_expired")));
        assert!(is_retryable(None, None));
        assert!(!is_retryable(Some(400), Some("invalid_request_error")));
        assert!(!is_retryable(None, Some("invalid_request")));
        let limits = PartLimits {
            max_requests: 50_000,
            max_bytes: 200,
            max_tokens: Some(1000),
        };
        assert_eq!(parts_needed(120_000, 10, 10, limits), 3);
        assert_eq!(parts_needed(1, 401, 10, limits), 3);
        assert_eq!(parts_needed(1, 1, 4001, limits), 5);
        assert_eq!(parts_needed(0, 0, 0, limits), 1);
    }

    #[test]
    fn a_request_over_a_limit_alone_is_refused_with_its_line() {
        let limits = PartLimits {
            max_requests: 10,
            max_bytes: 100,
            max_tokens: Some(50),
        };
        let e = split(limits, &[(10, 5), (10, 51)]).unwrap_err();
        assert_eq!((e.line, e.what, e.value, e.limit), (2, "tokens", 51, 50));
        let e = split(limits, &[(101, 1)]).unwrap_err();
        assert_eq!((e.line, e.what), (1, "bytes"));
        assert!(split(limits, &[]).unwrap().is_empty());
    }
}
