//! The Budgets page (`/budgets`, admins): each user's and team's monthly
//! limit with this month's spend; set, change or remove one (written to
//! the budgets file, audited).

use leptos::prelude::*;
use leptos_meta::Title;

use super::format;
use crate::api::spend_fns::{list_budgets, BudgetStatus, Scope, SetBudget};
use crate::i18n::{t, tf, Key};

#[component]
pub fn BudgetsPage() -> impl IntoView {
    let set = ServerAction::<SetBudget>::new();
    let list = Resource::new(move || set.version().get(), |_| list_budgets());
    let (scope, set_scope) = signal(String::from("user"));
    let (name, set_name) = signal(String::new());
    let (limit, set_limit) = signal(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let scope = if scope.get() == "team" {
            Scope::Team
        } else {
            Scope::User
        };
        set.dispatch(SetBudget {
            scope,
            name: name.get(),
            limit: limit.get(),
        });
    };
    let outcome = move || {
        set.value().get().map(|r| match r {
            Ok(()) => view! { <p class="muted" role="status" data-testid="budget-saved">{t(Key::BudgetsSaved)}</p> }.into_any(),
            Err(e) => view! { <p class="error" role="alert" data-testid="budget-error">{e.describe()}</p> }.into_any(),
        })
    };
    view! {
        <Title text=t(Key::BudgetsTitle) />
        <div class="page-head"><h1>{t(Key::BudgetsTitle)}</h1></div>
        <Transition fallback=|| ()>
            {move || list.get().map(|r| match r {
                Ok(v) => {
                    let intro = tf(Key::BudgetsIntro, &[("key", &v.team_key), ("path", &v.path)]);
                    let table = if v.budgets.is_empty() {
                        view! { <p class="muted" data-testid="budgets-empty">{t(Key::BudgetsNone)}</p> }.into_any()
                    } else {
                        let rows = v.budgets.into_iter().map(|b| view! { <Row b set /> }).collect_view();
                        view! {
                            <div class="table-wrap">
                                <table class="batches" data-testid="budgets-table">
                                    <thead><tr>
                                        <th>{t(Key::BudgetsColScope)}</th>
                                        <th>{t(Key::BudgetsColName)}</th>
                                        <th class="num">{t(Key::BudgetsColLimit)}</th>
                                        <th class="num">{t(Key::BudgetsColSpent)}</th>
                                        <th class="num">{t(Key::BudgetsColLeft)}</th>
                                        <th></th>
                                    </tr></thead>
                                    <tbody>{rows}</tbody>
                                </table>
                            </div>
                        }.into_any()
                    };
                    view! { <p class="muted">{intro}</p> {table} }.into_any()
                }
                Err(e) => view! { <section class="error-state"><p>{e.describe()}</p></section> }.into_any(),
            })}
        </Transition>
        <form class="panel new-token" on:submit=submit data-testid="budget-form">
            <label class="field"><span>{t(Key::BudgetsColScope)}</span>
                <select data-testid="budget-scope" on:change=move |ev| set_scope.set(event_target_value(&ev))>
                    <option value="user">{t(Key::SpendScopeUser)}</option>
                    <option value="team">{t(Key::SpendScopeTeam)}</option>
                </select>
            </label>
            <label class="field"><span>{t(Key::BudgetsName)}</span>
                <input required maxlength="512" data-testid="budget-name"
                    prop:value=name on:input=move |ev| set_name.set(event_target_value(&ev)) />
            </label>
            <label class="field"><span>{t(Key::BudgetsLimit)}</span>
                <input type="number" min="0" step="0.01" required data-testid="budget-limit"
                    prop:value=limit on:input=move |ev| set_limit.set(event_target_value(&ev)) />
            </label>
            <div class="actions">
                <button type="submit" class="btn btn-primary" data-testid="budget-set"
                    disabled=move || set.pending().get()>{t(Key::BudgetsSet)}</button>
            </div>
        </form>
        {outcome}
    }
}

#[component]
fn Row(b: BudgetStatus, set: ServerAction<SetBudget>) -> impl IntoView {
    let (scope, name) = (b.scope, b.name.clone());
    view! {
        <tr data-testid="budget-row" data-scope=b.scope.as_str() data-name=b.name.clone() data-level=b.level().to_string()>
            <td>{t(b.scope.key())}</td>
            <td>{b.name.clone()}</td>
            <td class="num">{format::usd(b.limit_usd)}</td>
            <td class="num" data-testid="budget-spent" data-usd=format!("{}", b.spent_usd)>{format::usd(b.spent_usd)}</td>
            <td class="num">{format::usd(b.left_usd())}</td>
            <td>
                <button class="btn btn-small btn-danger" data-testid="budget-remove"
                    on:click=move |_| { set.dispatch(SetBudget { scope, name: name.clone(), limit: String::new() }); }>
                    {t(Key::BudgetsRemove)}
                </button>
            </td>
        </tr>
    }
}
