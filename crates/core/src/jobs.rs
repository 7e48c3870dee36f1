//! Jobs larger than one batch (issue 20): where a file's requests are cut
//! into parts that each fit an upstream's limits: requests per batch, bytes
//! per file and, when the model has one, the enqueued-token limit (a part's
//! estimated input tokens must fit under it on its own; the scheduler then
//! waits until what is enqueued leaves room). Lines keep their order within
//! and across parts. No I/O: the server feeds each line's size and token
//! estimate as it streams the file.

use serde::{Deserialize, Serialize};

/// What one part may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLimits {
    pub max_requests: u64,
    /// Bytes of the part's file (lines with their line endings).
    pub max_bytes: u64,
    /// Estimated input tokens (the model's enqueued-token limit), if any.
    pub max_tokens: Option<u64>,
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
