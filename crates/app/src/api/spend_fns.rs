//! Server functions of the spend and budgets pages, and a batch's cost.

use leptos::prelude::*;

use super::AppError;
#[cfg(feature = "ssr")]
use super::{actor, state};
pub use batchboard_core::spend::{BatchCost, BudgetStatus, Scope, SpendQuery, SpendReport};
#[cfg(feature = "ssr")]
use batchboard_server::http::actor::{Admin, Viewer};
use serde::{Deserialize, Serialize};

/// What the spend page shows for `query`.
#[server(endpoint = "get_spend")]
pub async fn get_spend(#[server(default)] query: SpendQuery) -> Result<SpendReport, AppError> {
    actor::<Viewer>().await?;
    Ok(batchboard_server::services::spend::report(&state()?, &query).await?)
}

/// A batch's cost, as far as it is known (`None`: not priced).
#[server(endpoint = "get_batch_cost")]
pub async fn get_batch_cost(id: String) -> Result<Option<BatchCost>, AppError> {
    actor::<Viewer>().await?;
    super::check_id("batch", &id)?;
    let st = state()?;
    let b = st.batch(&id).await?;
    Ok(batchboard_server::services::spend::batch_cost(&st, &b).await?)
}

/// The budgets page: every budget with this month's spend, where they are
/// kept and the team key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetsView {
    pub budgets: Vec<BudgetStatus>,
    pub path: String,
    pub team_key: String,
}

#[server(endpoint = "list_budgets")]
pub async fn list_budgets() -> Result<BudgetsView, AppError> {
    actor::<Admin>().await?;
    let st = state()?;
    Ok(BudgetsView {
        budgets: batchboard_server::services::spend::budgets(&st).await?,
        path: st.budgets.path().display().to_string(),
        team_key: st.team_key.to_string(),
    })
}

/// Sets (or, with an empty `limit`, removes) a user's or team's monthly
/// budget; written to the budgets file and audited.
#[server(endpoint = "set_budget")]
pub async fn set_budget(scope: Scope, name: String, limit: String) -> Result<(), AppError> {
    use batchboard_core::i18n::{Key, Msg};
    let actor = actor::<Admin>().await?;
    let st = state()?;
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 512 {
        return Err(AppError::invalid(Msg::new(Key::BudgetsBadName)));
    }
    let limit = limit.trim();
    let value = if limit.is_empty() {
        None
    } else {
        Some(
            limit
                .parse::<f64>()
                .ok()
                .filter(|v| batchboard_server::budgets::is_amount(*v))
                .ok_or_else(|| {
                    AppError::invalid(Msg::new(Key::BudgetsBadLimit).arg("value", limit))
                })?,
        )
    };
    let mut limits = st.budgets.current();
    let map = match scope {
        Scope::User => &mut limits.users,
        Scope::Team => &mut limits.teams,
    };
    match value {
        Some(v) => map.insert(name.clone(), v),
        None => map.remove(&name),
    };
    st.budgets.save(&limits).map_err(|e| {
        AppError::from(batchboard_core::error::ApiError::Invalid(
            Msg::new(Key::BudgetsCannotSave).arg("detail", e),
        ))
    })?;
    let detail = Msg::new(Key::AuditDetailBudget)
        .arg_text("scope", scope.key())
        .arg("name", &name)
        .arg(
            "limit",
            value.map_or("-".to_string(), batchboard_server::services::spend::usd),
        );
    actor.audit("set_budget", None, Some(detail)).await;
    Ok(())
}
