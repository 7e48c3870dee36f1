//! Batch prices per model, and the cost estimate of a validated file. The
//! built-in table can be replaced with `--price-table FILE` (TOML, same
//! shape); the browser gets the table the server uses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::validate::Report;

/// US dollars per million tokens, at Batch API prices (half the standard
/// rate).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input: f64,
    #[serde(default)]
    pub output: f64,
    /// Input tokens read from the prompt cache; without it they cost what
    /// other input costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// The most output tokens one request can produce: the bound of a
    /// request that sets no limit of its own (budgets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    /// Where the figures come from (shown next to the estimate).
    #[serde(default)]
    pub source: String,
    /// Model name or prefix → price. The longest matching prefix wins, so
    /// `gpt-4o-mini-2024-07-18` takes the `gpt-4o-mini` price.
    pub models: BTreeMap<String, Price>,
}

/// Model prefix, input, cached input, output (USD per million tokens at
/// batch prices) and the model's output limit.
const BUILT_IN: &[(&str, f64, f64, f64, u64)] = &[
    ("gpt-5", 0.625, 0.0625, 5.0, 128_000),
    ("gpt-5-mini", 0.125, 0.0125, 1.0, 128_000),
    ("gpt-5-nano", 0.025, 0.0025, 0.2, 128_000),
    ("gpt-4.1", 1.0, 0.25, 4.0, 32_768),
    ("gpt-4.1-mini", 0.2, 0.05, 0.8, 32_768),
    ("gpt-4.1-nano", 0.05, 0.0125, 0.2, 32_768),
    ("gpt-4o", 1.25, 0.625, 5.0, 16_384),
    ("gpt-4o-mini", 0.075, 0.0375, 0.3, 16_384),
    ("o3", 1.0, 0.25, 4.0, 100_000),
    ("o3-mini", 0.55, 0.275, 2.2, 100_000),
    ("o4-mini", 0.55, 0.1375, 2.2, 100_000),
    ("gpt-3.5-turbo", 0.25, 0.25, 0.75, 4_096),
    ("text-embedding-3-small", 0.01, 0.01, 0.0, 0),
    ("text-embedding-3-large", 0.065, 0.065, 0.0, 0),
    ("text-embedding-ada-002", 0.05, 0.05, 0.0, 0),
    ("omni-moderation", 0.0, 0.0, 0.0, 0),
];

/// The built-in table's `source` (the dashboard words it in the reader's
/// language: `prices.built_in`).
pub const BUILT_IN_SOURCE: &str =
    "built-in table (OpenAI batch prices, 2025); set --price-table for yours";

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            source: BUILT_IN_SOURCE.into(),
            models: BUILT_IN
                .iter()
                .map(|&(m, input, cached, output, max)| {
                    (
                        m.to_string(),
                        Price {
                            input,
                            output,
                            cached_input: Some(cached),
                            max_output: Some(max),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The server's price table and the upstreams' own (by stored name, `""`
/// for the first), as the pages get them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceTables {
    pub default: PriceTable,
    #[serde(default)]
    pub upstreams: BTreeMap<String, PriceTable>,
}

impl PriceTables {
    /// The table of batches on `upstream` (stored name).
    pub fn of(&self, upstream: &str) -> &PriceTable {
        self.upstreams.get(upstream).unwrap_or(&self.default)
    }
}

/// What a file will cost, as far as can be known before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    /// The table entry that matched the model.
    pub priced_as: String,
    pub input_usd: f64,
    /// The most the answers can cost, when every request limits its output.
    pub output_max_usd: Option<f64>,
}

impl PriceTable {
    pub fn lookup(&self, model: &str) -> Option<(&str, Price)> {
        self.models
            .iter()
            .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(p, price)| (p.as_str(), *price))
    }

    /// The estimate for a validated file with its token estimate.
    pub fn estimate(&self, report: &Report) -> Option<CostEstimate> {
        let (priced_as, price) = self.lookup(report.model.as_deref()?)?;
        let tokens = report.tokens.as_ref()?.input_tokens;
        let all_limited = report.requests > 0 && report.limited_requests == report.requests;
        Some(CostEstimate {
            priced_as: priced_as.to_string(),
            input_usd: tokens as f64 * price.input / 1e6,
            output_max_usd: all_limited
                .then(|| report.max_output_tokens as f64 * price.output / 1e6),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::TokenEstimate;

    #[test]
    fn the_longest_prefix_wins() {
        let t = PriceTable::default();
        assert_eq!(
            t.lookup("gpt-4o-mini-2024-07-18").map(|p| p.0),
            Some("gpt-4o-mini")
        );
        assert_eq!(t.lookup("gpt-4o-2024-08-06").map(|p| p.0), Some("gpt-4o"));
        assert_eq!(t.lookup("llama-3"), None);
    }

    #[test]
    fn cost_needs_a_model_and_tokens_and_bounds_output_only_when_all_are_limited() {
        let t = PriceTable::default();
        let mut r = Report {
            model: Some("gpt-4o-mini".into()),
            requests: 2,
            limited_requests: 2,
            max_output_tokens: 2_000_000,
            tokens: Some(TokenEstimate {
                input_tokens: 4_000_000,
                encoding: "o200k_base".into(),
                exact: true,
            }),
            ..Report::default()
        };
        let c = t.estimate(&r).unwrap();
        assert!((c.input_usd - 0.3).abs() < 1e-9);
        assert!((c.output_max_usd.unwrap() - 0.6).abs() < 1e-9);
        r.limited_requests = 1;
        assert_eq!(t.estimate(&r).unwrap().output_max_usd, None);
        r.model = Some("unknown".into());
        assert_eq!(t.estimate(&r), None);
    }
}
