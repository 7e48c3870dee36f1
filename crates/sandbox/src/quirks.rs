//! Limits and failures of the real API that the sandbox imitates on
//! request, so that what copes with them (splitting, waiting, resubmitting)
//! can be tested:
//! - an **enqueued-token limit** per model: a batch whose estimated input
//!   tokens, added to those of the model's batches still running, exceed it
//!   fails validation with `token_limit_exceeded`, as OpenAI's does;
//! - **request failures** at given rates (`429=0.02,500=0.01`): a request
//!   answers that status instead of running. Which requests fail depends on
//!   the batch and the `custom_id` only, so a run can be repeated, and the
//!   same request sent again in another batch may well succeed;
//! - **no `usage` on batches**, as on batches made before September 2025
//!   and on providers that do not report it (the result lines still carry
//!   each request's usage).

use std::collections::BTreeMap;

/// What the sandbox imitates besides its pace.
#[derive(Debug, Clone, Default)]
pub struct Quirks {
    /// Model → tokens that may be enqueued at once.
    pub enqueued_tokens: BTreeMap<String, u64>,
    /// Status → share of requests that answer it (their sum at most 1).
    pub request_failures: Vec<(u16, f64)>,
    /// Batch objects carry no `usage`.
    pub no_batch_usage: bool,
}

impl Quirks {
    /// `MODEL=TOKENS`.
    pub fn parse_enqueued(s: &str) -> Result<(String, u64), String> {
        let (model, n) = s
            .split_once('=')
            .ok_or_else(|| format!("'{s}' is not MODEL=TOKENS"))?;
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("'{n}' is not a number of tokens"))?;
        let model = model.trim();
        if model.is_empty() {
            return Err(format!("'{s}' names no model"));
        }
        Ok((model.to_owned(), n))
    }

    /// `429=0.02,500=0.01`: statuses 400–599 and their shares.
    pub fn parse_failures(s: &str) -> Result<Vec<(u16, f64)>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (status, rate) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}' is not STATUS=RATE"))?;
            let status: u16 = status
                .trim()
                .parse()
                .ok()
                .filter(|s| (400..600).contains(s))
                .ok_or_else(|| format!("'{status}' is not a status from 400 to 599"))?;
            let rate: f64 = rate
                .trim()
                .parse()
                .ok()
                .filter(|r: &f64| (0.0..=1.0).contains(r))
                .ok_or_else(|| format!("'{rate}' is not a rate from 0 to 1"))?;
            out.push((status, rate));
        }
        if out.iter().map(|(_, r)| r).sum::<f64>() > 1.0 {
            return Err("the rates add up to more than 1".into());
        }
        Ok(out)
    }

    /// The status request `custom_id` of batch `batch` answers instead of
    /// running, if any.
    pub fn failure(&self, batch: &str, custom_id: &str) -> Option<u16> {
        if self.request_failures.is_empty() {
            return None;
        }
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in batch.bytes().chain([0]).chain(custom_id.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // FNV's high bits are not even for short, similar ids: mixed
        // (splitmix64's finaliser) before they are read as a fraction.
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        let x = (h >> 11) as f64 / (1u64 << 53) as f64;
        let mut edge = 0.0;
        for (status, rate) in &self.request_failures {
            edge += rate;
            if x < edge {
                return Some(*status);
            }
        }
        None
    }
}

/// OpenAI's words for a batch over the enqueued-token limit.
pub fn token_limit_message(model: &str, limit: u64) -> String {
    format!(
        "Enqueued token limit reached for {model} in organization org-sandbox. Limit: {limit} enqueued tokens. Please try again once some in_progress batches have been completed."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_fail_about_that_share_of_requests_repeatably() {
        let q = Quirks {
            request_failures: Quirks::parse_failures("429=0.2, 500=0.1").unwrap(),
            ..Quirks::default()
        };
        let ids: Vec<String> = (0..10_000).map(|i| format!("r{i}")).collect();
        let count = |s: u16| {
            ids.iter()
                .filter(|i| q.failure("batch_a", i) == Some(s))
                .count()
        };
        assert!((1_800..2_200).contains(&count(429)), "{}", count(429));
        assert!((800..1_200).contains(&count(500)), "{}", count(500));
        assert_eq!(q.failure("batch_a", "r1"), q.failure("batch_a", "r1"));
        let again = ids
            .iter()
            .filter(|i| q.failure("batch_a", i).is_some() && q.failure("batch_b", i).is_some())
            .count();
        assert!(again < 1_200, "another batch fails other requests: {again}");
        for bad in ["429", "429=2", "200=0.1", "429=0.6,500=0.6"] {
            assert!(Quirks::parse_failures(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Quirks::parse_enqueued("gpt-4o-mini=90000").unwrap(),
            ("gpt-4o-mini".into(), 90_000)
        );
        assert!(Quirks::parse_enqueued("=5").is_err());
    }
}
