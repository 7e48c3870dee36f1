//! Spend: what batches cost, summed by period and group for the spend page
//! and its CSV, and the budgets that refuse a batch that could overspend.
//! One implementation for the pages, the upload route, jobs and `/v1`.

use std::collections::HashMap;
use std::sync::Arc;

use batchboard_core::dashboard::{display_upstream, BatchQuery};
use batchboard_core::error::ApiError;
use batchboard_core::i18n::{Key, Msg};
use batchboard_core::prices::PriceTable;
use batchboard_core::spend::{
    BatchCost, BudgetStatus, Estimate, Priced, Scope, SpendGroup, SpendQuery, SpendReport,
};
use batchboard_core::validate::Report;
use batchboard_core::Metadata;
use time::{Date, Duration, OffsetDateTime};

use crate::http::HttpError;
use crate::state::AppState;
use crate::store::spend::SpendRow;

/// Periods a report may have at most (a day chart of 13 months).
const MAX_PERIODS: usize = 400;

/// `$1,234.57` (the refusal's and the webhook's figures; `< $0.0001`
/// for a trace).
pub fn usd(v: f64) -> String {
    batchboard_core::i18n::I18n::get("en").usd(v)
}

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// This month, as `YYYY-MM`, and its first day.
pub fn this_month() -> (String, Date) {
    let first = today().replace_day(1).unwrap_or(today());
    (month_label(first), first)
}

fn month_label(d: Date) -> String {
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

fn day_label(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn label(d: Date, period: &str) -> String {
    match period {
        "day" => day_label(d),
        "week" => {
            let (y, w, _) = d.to_iso_week_date();
            format!("{y:04}-W{w:02}")
        }
        _ => month_label(d),
    }
}

fn parse_day(s: &str, field: &str) -> Result<Date, HttpError> {
    crate::store::index::parse_day(s, field).map_err(HttpError::invalid)
}

/// The report's first and last day: as asked, or by default the last 30
/// days, 12 weeks or 6 months.
fn range(q: &SpendQuery) -> Result<(Date, Date), HttpError> {
    let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let to = match non_empty(&q.to) {
        Some(s) => parse_day(&s, "to")?,
        None => today(),
    };
    let from = match non_empty(&q.from) {
        Some(s) => parse_day(&s, "from")?,
        None => match q.period() {
            "day" => to - Duration::days(29),
            "week" => to - Duration::weeks(11),
            _ => {
                let mut d = to.replace_day(1).unwrap_or(to);
                for _ in 0..5 {
                    d = (d - Duration::days(1)).replace_day(1).unwrap_or(d);
                }
                d
            }
        },
    };
    if from > to {
        return Err(HttpError::invalid(
            Msg::new(Key::SpendFromAfterTo)
                .arg("from", day_label(from))
                .arg("to", day_label(to)),
        ));
    }
    Ok((from, to))
}

/// The price table for batches of `upstream`: its own, or the server's.
pub fn prices(state: &AppState, upstream: &str) -> Arc<PriceTable> {
    state
        .upstreams
        .prices(upstream)
        .unwrap_or_else(|| state.prices.clone())
}

/// What `b` cost by its usage, by its upstream's prices: the table's Cost
/// cell, sent with each row and each `batch` event.
pub fn row_cost(state: &AppState, b: &batchboard_core::Batch) -> Option<f64> {
    prices(state, batchboard_core::dashboard::split_qualified(&b.id).0).usage_cost(b)
}

/// Price tables by upstream, looked up once per upstream of a report.
struct Tables<'a> {
    state: &'a AppState,
    seen: HashMap<String, Arc<PriceTable>>,
}

impl Tables<'_> {
    fn cost(&mut self, r: &SpendRow) -> Option<BatchCost> {
        let table = self
            .seen
            .entry(r.upstream.clone())
            .or_insert_with(|| prices(self.state, &r.upstream));
        cost(table, r)
    }
}

fn cost(table: &PriceTable, r: &SpendRow) -> Option<BatchCost> {
    let (completed, total) = r.counts();
    let estimate = r.estimate();
    let read = r.read_usage();
    table.batch_cost(&Priced {
        model: r.model.as_deref(),
        usage: r.usage(),
        results: read.as_ref().map(|u| u.tokens),
        results_model: read.as_ref().and_then(|u| u.model.as_deref()),
        estimate: estimate.as_ref(),
        completed,
        total,
        ended: r.terminal != 0,
    })
}

/// The spend page's figures for `q`.
pub async fn report(state: &AppState, q: &SpendQuery) -> Result<SpendReport, HttpError> {
    let (from, to) = range(q)?;
    let period = q.period();
    let mut periods: Vec<String> = Vec::new();
    let mut d = from;
    while d <= to {
        let l = label(d, period);
        if periods.last() != Some(&l) {
            if periods.len() == MAX_PERIODS {
                return Err(HttpError::invalid(
                    Msg::new(Key::SpendTooManyPeriods).arg("max", MAX_PERIODS),
                ));
            }
            periods.push(l);
        }
        d += Duration::days(1);
    }
    let index: HashMap<&str, usize> = periods
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let team = q.team.clone().filter(|t| !t.trim().is_empty());
    let filters = BatchQuery {
        upstream: q.upstream.clone(),
        model: q.model.clone(),
        endpoint: q.endpoint.clone(),
        creator: q.creator.clone(),
        meta_key: team.as_ref().map(|_| state.team_key.to_string()),
        meta_value: team,
        from: Some(day_label(from)),
        to: Some(day_label(to)),
        ..BatchQuery::default()
    };
    let rows = state.db.spend_rows(&filters, &state.team_key).await?;
    let mut out = SpendReport {
        team_key: state.team_key.to_string(),
        ..SpendReport::default()
    };
    let mut groups: HashMap<String, SpendGroup> = HashMap::new();
    let mut tables = Tables {
        state,
        seen: HashMap::new(),
    };
    for r in &rows {
        out.batches += 1;
        let Some(c) = tables.cost(r) else {
            out.unpriced += 1;
            continue;
        };
        let name = match q.group() {
            "team" => r.team.clone(),
            "upstream" => Some(display_upstream(&r.upstream).to_string()),
            "model" => r.model.clone().or_else(|| r.est_model.clone()),
            "endpoint" => Some(r.endpoint.clone()),
            _ => r.creator.clone(),
        }
        .unwrap_or_default();
        let g = groups.entry(name.clone()).or_insert_with(|| SpendGroup {
            name,
            by_period: vec![0.0; periods.len()],
            ..SpendGroup::default()
        });
        let at = OffsetDateTime::from_unix_timestamp(r.created_at)
            .map(|t| label(t.date(), period))
            .ok();
        if let Some(i) = at.as_deref().and_then(|l| index.get(l)) {
            g.by_period[*i] += c.usd;
        }
        g.usd += c.usd;
        g.batches += 1;
        if let Some(t) = c.tokens {
            g.tokens += t;
        }
        if c.basis == batchboard_core::spend::Basis::Estimated {
            g.estimated_usd += c.usd;
            out.estimated_usd += c.usd;
        }
        out.usd += c.usd;
    }
    let mut groups: Vec<SpendGroup> = groups.into_values().collect();
    groups.sort_by(|a, b| b.usd.total_cmp(&a.usd).then_with(|| a.name.cmp(&b.name)));
    out.groups = groups;
    out.periods = periods;
    out.budgets = budgets(state).await?;
    Ok(out)
}

/// This month's spend of a user's or a team's batches: finished ones at
/// their cost, running ones at their upper bound (what they may still
/// come to).
async fn month_spent(state: &AppState, scope: Scope, name: &str) -> Result<f64, HttpError> {
    let (_, first) = this_month();
    let mut q = BatchQuery {
        from: Some(day_label(first)),
        ..BatchQuery::default()
    };
    match scope {
        Scope::User => q.creator = Some(name.to_string()),
        Scope::Team => {
            q.meta_key = Some(state.team_key.to_string());
            q.meta_value = Some(name.to_string());
        }
    }
    let rows = state.db.spend_rows(&q, &state.team_key).await?;
    let mut tables = Tables {
        state,
        seen: HashMap::new(),
    };
    let batches: f64 = rows
        .iter()
        .filter_map(|r| tables.cost(r))
        .map(|c| c.upper_usd.unwrap_or(c.usd))
        .sum();
    // Jobs' parts not submitted yet have no batch: they hold their share
    // of the job's most.
    let since = first.midnight().assume_utc().unix_timestamp();
    let jobs: f64 = state
        .db
        .job_reservations(since)
        .await?
        .into_iter()
        .filter(|(by, metadata, _)| match scope {
            Scope::User => by == name,
            Scope::Team => serde_json::from_str::<Metadata>(metadata)
                .ok()
                .and_then(|m| m.get(state.team_key.as_ref()).cloned())
                .is_some_and(|t| t == name),
        })
        .map(|(_, _, usd)| usd)
        .sum();
    Ok(batches + jobs)
}

/// A budget with this month's spend.
async fn status(
    state: &AppState,
    scope: Scope,
    name: &str,
    limit: f64,
) -> Result<BudgetStatus, HttpError> {
    Ok(BudgetStatus {
        scope,
        name: name.to_string(),
        limit_usd: limit,
        spent_usd: month_spent(state, scope, name).await?,
        month: this_month().0,
    })
}

/// Every budget with this month's spend.
pub async fn budgets(state: &AppState) -> Result<Vec<BudgetStatus>, HttpError> {
    let limits = state.budgets.current();
    let mut out = Vec::new();
    for (scope, name, limit) in limits.all() {
        out.push(status(state, scope, name, limit).await?);
    }
    Ok(out)
}

/// The budgets a batch of `user` with `metadata` counts against (its
/// user's and its team's, those that are set), with this month's spend.
async fn budgets_of(
    state: &AppState,
    user: &str,
    metadata: Option<&Metadata>,
) -> Result<Vec<BudgetStatus>, HttpError> {
    let limits = state.budgets.current();
    let team = metadata.and_then(|m| m.get(state.team_key.as_ref()));
    let mut out = Vec::new();
    for (scope, name) in [
        (Scope::User, Some(user)),
        (Scope::Team, team.map(String::as_str)),
    ] {
        let Some((name, limit)) = name.and_then(|n| Some((n, limits.get(scope, n)?))) else {
            continue;
        };
        out.push(status(state, scope, name, limit).await?);
    }
    Ok(out)
}

/// A new batch's (or job's) budget check, and what follows its creation.
pub struct Guard {
    estimate: Option<Estimate>,
    max_usd: f64,
    /// An admin went over a budget with it.
    went_over: bool,
    user: String,
    metadata: Option<Metadata>,
}

impl Guard {
    /// Refuses a checked file of `user` for `upstream` whose most it could
    /// cost would pass the user's or the team's budget for this month,
    /// with the numbers. `over`: the caller asked to go over; only an
    /// admin may (anyone else's ask is ignored).
    pub async fn check(
        state: &AppState,
        (user, role): (&str, batchboard_core::access::Role),
        upstream: &str,
        report: &Report,
        metadata: Option<&Metadata>,
        over: bool,
    ) -> Result<Self, HttpError> {
        let estimate = Estimate::of(report, &prices(state, upstream));
        Self::check_estimate(state, (user, role), upstream, estimate, metadata, over).await
    }

    /// [`Guard::check`] with the estimate already made (`/v1`: made when
    /// the file was uploaded).
    pub async fn check_estimate(
        state: &AppState,
        (user, role): (&str, batchboard_core::access::Role),
        upstream: &str,
        estimate: Option<Estimate>,
        metadata: Option<&Metadata>,
        over: bool,
    ) -> Result<Self, HttpError> {
        let over = over && role == batchboard_core::access::Role::Admin;
        let table = prices(state, upstream);
        let max_usd = estimate
            .as_ref()
            .and_then(|e| Some(e.max_usd(&table.lookup(e.model.as_deref()?)?.1)))
            .unwrap_or(0.0);
        let went_over = check_budget(state, user, metadata, max_usd, over).await?;
        Ok(Self {
            estimate,
            max_usd,
            went_over,
            user: user.to_owned(),
            metadata: metadata.cloned(),
        })
    }

    /// The batch was created: its estimate is kept, budgets that reached a
    /// warning level are announced. Returns the audit detail of an admin's
    /// override, if it was one.
    pub async fn created(self, state: &AppState, batch_id: &str) -> Option<Msg> {
        if let Some(e) = &self.estimate {
            if let Err(err) = state.db.set_estimate(batch_id, e).await {
                tracing::warn!(error = %err, "cannot keep the batch's estimate");
            }
        }
        self.announce(state)
    }

    /// [`Guard::created`] for a job: its estimate as a whole is kept (its
    /// parts' batches get their shares when they are submitted).
    pub async fn job_created(self, state: &AppState, job_id: &str) -> Option<Msg> {
        if let Some(e) = &self.estimate {
            if let Err(err) = state
                .db
                .set_job_estimate(job_id, e.output_max_tokens, self.max_usd)
                .await
            {
                tracing::warn!(job = %job_id, error = %err, "cannot keep the job's estimate");
            }
        }
        self.announce(state)
    }

    /// Budgets that reached a warning level are announced (after the
    /// answer); the audit detail of an admin's override, if it was one.
    fn announce(self, state: &AppState) -> Option<Msg> {
        let state = state.clone();
        let (user, metadata) = (self.user, self.metadata);
        tokio::spawn(async move { alert(&state, Some(&user), metadata.as_ref()).await });
        self.went_over
            .then(|| Msg::new(Key::AuditDetailBudgetOverride).arg("max", usd(self.max_usd)))
    }
}

/// Refuses a batch (or job) that could cost `max_usd` when that would pass
/// the user's or the team's budget for this month, with the numbers.
/// `overridden`: an admin chose to go over; allowed. Says whether it did
/// go over a budget.
async fn check_budget(
    state: &AppState,
    user: &str,
    metadata: Option<&Metadata>,
    max_usd: f64,
    overridden: bool,
) -> Result<bool, HttpError> {
    let mut went_over = false;
    for b in budgets_of(state, user, metadata).await? {
        if b.spent_usd + max_usd > b.limit_usd && overridden {
            went_over = true;
        } else if b.spent_usd + max_usd > b.limit_usd {
            return Err(ApiError::Forbidden(
                Msg::new(Key::SpendOverBudget)
                    .arg("max", usd(max_usd))
                    .arg_text("scope", b.scope.key())
                    .arg("name", &b.name)
                    .arg("left", usd(b.left_usd()))
                    .arg("limit", usd(b.limit_usd))
                    .arg("month", &b.month),
            )
            .into());
        }
    }
    Ok(went_over)
}

/// After a batch was created or ended: a budget of its user or team that
/// has now reached 80 % or 100 % of its month is announced once (webhook,
/// and every open page through the event stream).
pub async fn alert(state: &AppState, user: Option<&str>, metadata: Option<&Metadata>) {
    let Some(user) = user else { return };
    let statuses = match budgets_of(state, user, metadata).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a budget's spend");
            return;
        }
    };
    for status in statuses {
        let level = status.level();
        if level == 0 {
            continue;
        }
        let (scope, name) = (status.scope, status.name.clone());
        match state
            .db
            .note_budget_alert(scope.as_str(), &name, &status.month, level)
            .await
        {
            Ok(true) => {
                tracing::info!(scope = scope.as_str(), name = %name, level, "budget warning");
                if let Some(hook) = &state.webhook {
                    hook.send_budget(&status).await;
                }
                state
                    .hub
                    .send(crate::events::Change::Budget(Box::new(status)));
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot note a budget warning"),
        }
    }
}

/// One batch's cost (its page).
pub async fn batch_cost(
    state: &AppState,
    b: &batchboard_core::Batch,
) -> Result<Option<BatchCost>, HttpError> {
    let (estimate, read) = state.db.get_estimate(&b.id).await?;
    let upstream = batchboard_core::dashboard::split_qualified(&b.id).0;
    Ok(prices(state, upstream).batch_cost(&Priced {
        model: b.model.as_deref(),
        usage: b.usage.as_ref().map(Into::into),
        results: read.as_ref().map(|u| u.tokens),
        results_model: read.as_ref().and_then(|u| u.model.as_deref()),
        estimate: estimate.as_ref(),
        completed: b.request_counts.completed,
        total: b.request_counts.total,
        ended: b.status.is_terminal(),
    }))
}

/// `GET /api/spend.csv?…` (the spend page's query): one row per group with
/// its tokens, its total and its spend per period.
pub async fn csv(
    axum::extract::State(state): axum::extract::State<AppState>,
    _actor: crate::http::actor::Actor<crate::http::actor::Viewer>,
    axum::extract::Query(q): axum::extract::Query<SpendQuery>,
) -> Result<axum::response::Response, HttpError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let r = report(&state, &q).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head: Vec<String> = [
        q.group(),
        "batches",
        "input_tokens",
        "cached_tokens",
        "output_tokens",
        "reasoning_tokens",
        "estimated_usd",
        "usd",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    head.extend(r.periods.iter().cloned());
    let fail = |e: csv::Error| HttpError::from(ApiError::Internal(e.to_string()));
    w.write_record(&head).map_err(fail)?;
    for g in &r.groups {
        let mut row = vec![
            g.name.clone(),
            g.batches.to_string(),
            g.tokens.input.to_string(),
            g.tokens.cached.to_string(),
            g.tokens.output.to_string(),
            g.tokens.reasoning.to_string(),
            format!("{}", g.estimated_usd),
            format!("{}", g.usd),
        ];
        row.extend(g.by_period.iter().map(|v| format!("{v}")));
        w.write_record(&row).map_err(fail)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| HttpError::from(ApiError::Internal(e.to_string())))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"spend.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}
