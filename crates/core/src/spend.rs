//! What batches cost after the fact, what a new one may cost at most, and
//! the spend report and budgets the dashboard shows. Pure arithmetic on
//! the price table: the server and the browser compute the same figures.
//!
//! How a batch is priced:
//! - with the upstream's `usage` (batches since September 2025): uncached
//!   input at the input price, cached input at the cached price (the input
//!   price when the table has none), output at the output price. Reasoning
//!   tokens are part of the output tokens (they are billed as output) and
//!   are shown, not added again.
//! - without it: *estimated*, from the result lines' own usage once the
//!   results were read, or else from Batchboard's own input estimate made
//!   when it created the batch, for the share of requests that completed.
//! - a batch still running also has an upper bound: the estimate's input
//!   plus its output bound ([`Estimate::output_max_tokens`]).

use serde::{Deserialize, Serialize};

use crate::prices::{Price, PriceTable};
use crate::validate::Report;
use crate::Usage;

/// The output bound of a request without a limit of its own, for a model
/// whose price entry names no `max_output`.
pub const DEFAULT_MAX_OUTPUT: u64 = 16_384;

/// Token counts of a batch (or a sum of batches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub input: u64,
    /// Of `input`, read from the prompt cache.
    pub cached: u64,
    pub output: u64,
    /// Of `output`, spent reasoning.
    pub reasoning: u64,
}

impl From<&Usage> for Tokens {
    fn from(u: &Usage) -> Self {
        Self {
            input: u.input_tokens,
            cached: u.input_tokens_details.cached_tokens,
            output: u.output_tokens,
            reasoning: u.output_tokens_details.reasoning_tokens,
        }
    }
}

impl std::ops::AddAssign for Tokens {
    fn add_assign(&mut self, o: Self) {
        self.input += o.input;
        self.cached += o.cached;
        self.output += o.output;
        self.reasoning += o.reasoning;
    }
}

impl Price {
    /// US dollars for these tokens.
    pub fn cost(&self, t: &Tokens) -> f64 {
        let cached = t.cached.min(t.input);
        let cached_price = self.cached_input.unwrap_or(self.input);
        ((t.input - cached) as f64 * self.input
            + cached as f64 * cached_price
            + t.output as f64 * self.output)
            / 1e6
    }
}

/// What Batchboard estimated for a batch it created, kept beside the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    pub model: Option<String>,
    pub input_tokens: u64,
    /// The most output the requests can produce: their own limits, and
    /// the model's output limit for each request without one.
    pub output_max_tokens: u64,
}

impl Estimate {
    /// From a checked file with its token estimate (none without one).
    pub fn of(report: &Report, table: &PriceTable) -> Option<Self> {
        let tokens = report.tokens.as_ref()?;
        let model_max = report
            .model
            .as_deref()
            .and_then(|m| table.lookup(m))
            .and_then(|(_, p)| p.max_output)
            .unwrap_or(DEFAULT_MAX_OUTPUT);
        let unlimited = report.requests.saturating_sub(report.limited_requests);
        Some(Self {
            model: report.model.clone(),
            input_tokens: tokens.input_tokens,
            output_max_tokens: report.max_output_tokens + unlimited * model_max,
        })
    }

    /// The most the batch can cost at `price`.
    pub fn max_usd(&self, price: &Price) -> f64 {
        price.cost(&Tokens {
            input: self.input_tokens,
            output: self.output_max_tokens,
            ..Tokens::default()
        })
    }
}

/// What a batch's result lines say they used, summed when they were read
/// (kept for batches whose upstream reports no `usage`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadUsage {
    /// The model the answers name.
    #[serde(default)]
    pub model: Option<String>,
    pub tokens: Tokens,
}

/// Whether a cost comes from the upstream's `usage` or from an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Usage,
    Estimated,
}

impl Basis {
    /// As serialised (`usage`, `estimated`).
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Usage => "usage",
            Basis::Estimated => "estimated",
        }
    }
}

/// A batch's cost, as far as it is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchCost {
    pub usd: f64,
    pub basis: Basis,
    /// While the batch runs: the most it can still come to.
    pub upper_usd: Option<f64>,
    /// The price table entry used.
    pub priced_as: String,
    pub tokens: Option<Tokens>,
}

/// What is known of one batch for pricing it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Priced<'a> {
    pub model: Option<&'a str>,
    pub usage: Option<Tokens>,
    /// Summed from the result lines, when they were read (batches without
    /// `usage`).
    pub results: Option<Tokens>,
    /// The model the result lines name (batches without a `model`).
    pub results_model: Option<&'a str>,
    pub estimate: Option<&'a Estimate>,
    /// Requests completed and in all (for an estimate's share).
    pub completed: u64,
    pub total: u64,
    /// The batch can change no more.
    pub ended: bool,
}

impl PriceTable {
    /// What `b` cost by the usage it reports (the table's Cost cell);
    /// `None` without usage or without a price for its model.
    pub fn usage_cost(&self, b: &crate::Batch) -> Option<f64> {
        let usage = b.usage.as_ref()?;
        self.batch_cost(&Priced {
            model: b.model.as_deref(),
            usage: Some(usage.into()),
            ended: b.status.is_terminal(),
            ..Default::default()
        })
        .map(|c| c.usd)
    }

    /// A batch's cost; `None` when its model has no price, or neither
    /// usage nor an estimate is known.
    pub fn batch_cost(&self, b: &Priced<'_>) -> Option<BatchCost> {
        let model = b
            .model
            .or(b.estimate.and_then(|e| e.model.as_deref()))
            .or(b.results_model)?;
        let (priced_as, price) = self.lookup(model)?;
        let upper_usd = match (b.ended, b.estimate) {
            (false, Some(e)) => Some(e.max_usd(&price)),
            _ => None,
        };
        let (usd, basis, tokens) = match (b.usage, b.estimate) {
            (Some(t), _) => (price.cost(&t), Basis::Usage, Some(t)),
            (None, _) if b.results.is_some() => {
                let t = b.results.unwrap_or_default();
                (price.cost(&t), Basis::Estimated, Some(t))
            }
            (None, Some(e)) => {
                let share = if b.total == 0 {
                    0.0
                } else {
                    b.completed.min(b.total) as f64 / b.total as f64
                };
                let input = (e.input_tokens as f64 * share).round() as u64;
                let t = Tokens {
                    input,
                    ..Tokens::default()
                };
                (price.cost(&t), Basis::Estimated, None)
            }
            (None, None) => return None,
        };
        Some(BatchCost {
            usd,
            basis,
            upper_usd: upper_usd.map(|u| u.max(usd)),
            priced_as: priced_as.to_string(),
            tokens,
        })
    }
}

/// Who a budget is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    User,
    Team,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Team => "team",
        }
    }

    /// Its name in the reader's words ("user", "team").
    pub fn key(self) -> crate::i18n::Key {
        match self {
            Scope::User => crate::i18n::Key::SpendScopeUser,
            Scope::Team => crate::i18n::Key::SpendScopeTeam,
        }
    }
}

/// A monthly budget and what has been spent of it this month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetStatus {
    pub scope: Scope,
    pub name: String,
    pub limit_usd: f64,
    /// Costs of this month's batches, running ones at their upper bound.
    pub spent_usd: f64,
    /// `YYYY-MM` (UTC).
    pub month: String,
}

impl BudgetStatus {
    pub fn left_usd(&self) -> f64 {
        (self.limit_usd - self.spent_usd).max(0.0)
    }

    /// The share spent, in percent.
    pub fn percent(&self) -> f64 {
        if self.limit_usd <= 0.0 {
            100.0
        } else {
            self.spent_usd / self.limit_usd * 100.0
        }
    }

    /// The warning level reached: 0, 80 or 100.
    pub fn level(&self) -> u8 {
        match self.percent() {
            p if p >= 100.0 => 100,
            p if p >= 80.0 => 80,
            _ => 0,
        }
    }
}

/// What the spend page asks for; the URL's query string holds the same
/// names. Filters are the batch table's (`team` is the configured
/// metadata key's value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendQuery {
    /// `day`, `week` or `month` (default).
    #[serde(default)]
    pub period: Option<String>,
    /// `user` (default), `team`, `upstream`, `model` or `endpoint`.
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub creator: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
}

pub const PERIODS: [&str; 3] = ["day", "week", "month"];
pub const GROUPS: [&str; 5] = ["user", "team", "upstream", "model", "endpoint"];

impl SpendQuery {
    pub fn period(&self) -> &str {
        self.period
            .as_deref()
            .filter(|p| PERIODS.contains(p))
            .unwrap_or("month")
    }

    pub fn group(&self) -> &str {
        self.group
            .as_deref()
            .filter(|g| GROUPS.contains(g))
            .unwrap_or("user")
    }

    /// As a URL query string (empty fields left out).
    pub fn to_query_string(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("period", &self.period),
            ("group", &self.group),
            ("from", &self.from),
            ("to", &self.to),
            ("upstream", &self.upstream),
            ("model", &self.model),
            ("endpoint", &self.endpoint),
            ("creator", &self.creator),
            ("team", &self.team),
        ] {
            if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }
}

/// One group's spend (a user, a team, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendGroup {
    /// Empty: batches without a value (no team, no model).
    pub name: String,
    pub usd: f64,
    /// Of `usd`, from estimates.
    pub estimated_usd: f64,
    pub batches: u64,
    pub tokens: Tokens,
    /// Per period of [`SpendReport::periods`], in order.
    pub by_period: Vec<f64>,
}

/// The spend page's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendReport {
    /// Period labels, oldest first (`2026-11-30`, `2026-W48`, `2026-11`).
    pub periods: Vec<String>,
    /// Largest spend first.
    pub groups: Vec<SpendGroup>,
    pub usd: f64,
    pub estimated_usd: f64,
    pub batches: u64,
    /// Batches that could not be priced (no price for the model, or no
    /// usage and no estimate).
    pub unpriced: u64,
    /// The metadata key that names a batch's team.
    pub team_key: String,
    /// The budgets and this month's spend of each.
    pub budgets: Vec<BudgetStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::TokenEstimate;

    fn price() -> Price {
        Price {
            input: 2.0,
            output: 8.0,
            cached_input: Some(0.5),
            max_output: Some(1000),
        }
    }

    #[test]
    fn usage_is_priced_with_cached_input_apart_and_reasoning_inside_output() {
        let t = Tokens {
            input: 1_000_000,
            cached: 400_000,
            output: 250_000,
            reasoning: 100_000,
        };
        // 600k × $2 + 400k × $0.50 + 250k × $8, per million.
        assert!((price().cost(&t) - (1.2 + 0.2 + 2.0)).abs() < 1e-9);
        let no_cache_price = Price {
            cached_input: None,
            ..price()
        };
        assert!((no_cache_price.cost(&t) - (2.0 + 2.0)).abs() < 1e-9);
    }

    #[test]
    fn an_estimate_bounds_unlimited_requests_by_the_models_output_limit() {
        let mut table = PriceTable::default();
        table.models.insert("m".into(), price());
        let report = Report {
            model: Some("m-1".into()),
            requests: 3,
            limited_requests: 1,
            max_output_tokens: 50,
            tokens: Some(TokenEstimate {
                input_tokens: 900,
                encoding: "o200k_base".into(),
                exact: true,
            }),
            ..Report::default()
        };
        let e = Estimate::of(&report, &table).unwrap();
        assert_eq!(e.output_max_tokens, 50 + 2 * 1000);
        assert!((e.max_usd(&price()) - (900.0 * 2.0 + 2050.0 * 8.0) / 1e6).abs() < 1e-12);
    }

    #[test]
    fn a_batch_without_usage_is_estimated_for_its_completed_share() {
        let mut table = PriceTable::default();
        table.models.insert("m".into(), price());
        let e = Estimate {
            model: Some("m".into()),
            input_tokens: 1_000_000,
            output_max_tokens: 100_000,
        };
        let running = table
            .batch_cost(&Priced {
                estimate: Some(&e),
                completed: 1,
                total: 4,
                ..Priced::default()
            })
            .unwrap();
        assert_eq!(running.basis, Basis::Estimated);
        assert!((running.usd - 0.5).abs() < 1e-9);
        assert!((running.upper_usd.unwrap() - (2.0 + 0.8)).abs() < 1e-9);
        let with_usage = table
            .batch_cost(&Priced {
                model: Some("m"),
                usage: Some(Tokens {
                    input: 10,
                    ..Tokens::default()
                }),
                ended: true,
                ..Priced::default()
            })
            .unwrap();
        assert_eq!(with_usage.basis, Basis::Usage);
        assert_eq!(with_usage.upper_usd, None);
        assert_eq!(table.batch_cost(&Priced::default()), None);
        // The result lines' own usage, once read, beats the estimate.
        let read = table
            .batch_cost(&Priced {
                estimate: Some(&e),
                results: Some(Tokens {
                    input: 100_000,
                    cached: 0,
                    output: 10_000,
                    reasoning: 0,
                }),
                completed: 1,
                total: 4,
                ended: true,
                ..Priced::default()
            })
            .unwrap();
        assert_eq!(read.basis, Basis::Estimated);
        assert!((read.usd - (0.2 + 0.08)).abs() < 1e-9);
    }

    #[test]
    fn budget_levels() {
        let mut b = BudgetStatus {
            scope: Scope::Team,
            name: "search".into(),
            limit_usd: 500.0,
            spent_usd: 399.0,
            month: "2026-11".into(),
        };
        assert_eq!(b.level(), 0);
        b.spent_usd = 400.0;
        assert_eq!(b.level(), 80);
        b.spent_usd = 512.0;
        assert_eq!((b.level(), b.left_usd()), (100, 0.0));
    }
}
