//! The Tokens page (`/tokens`, any signed-in role): make a personal access
//! token for scripts (name, role no higher than one's own, expiry), see it
//! once, list one's tokens with their last use, revoke them. Admins see
//! and revoke everyone's.

use leptos::prelude::*;
use leptos_meta::Title;

use super::components::Time;
use crate::api::tokens_fns::{CreateToken, RevokeToken, Role, TokenInfo};
use crate::i18n::{t, tf, Key};

#[component]
pub fn TokensPage() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let list = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| crate::api::tokens_fns::list_tokens(),
    );
    let (name, set_name) = signal(String::new());
    let (role, set_role) = signal(String::from("viewer"));
    let (days, set_days) = signal(String::from("90"));
    let (upstream, set_upstream) = signal(None::<String>);
    let upstreams = Resource::new(|| (), |_| crate::api::list_upstreams());
    let made = move || {
        create.value().get().map(|r| match r {
            Ok(n) => view! {
                <section class="panel" data-testid="token-made" role="status">
                    <p><strong>{t(Key::TokensMade)}</strong></p>
                    <pre class="mono" data-testid="token-secret">{n.token}</pre>
                    <p class="muted">{tf(Key::TokensUse, &[("base", &"/v1")])}</p>
                </section>
            }
            .into_any(),
            Err(e) => {
                view! { <p class="error" role="alert" data-testid="token-error">{e.describe()}</p> }
                    .into_any()
            }
        })
    };
    let roles = move || {
        [Role::Viewer, Role::Operator, Role::Admin]
            .into_iter()
            .filter(|r| super::session::may(*r))
            .map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> })
            .collect_view()
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let role = Role::parse(&role.get()).unwrap_or(Role::Viewer);
        let expires_days = days.get().trim().parse().ok();
        create.dispatch(CreateToken {
            name: name.get(),
            role,
            expires_days,
            upstream: upstream.get().filter(|u| !u.is_empty()),
        });
    };
    view! {
        <Title text=t(Key::TokensTitle) />
        <div class="page-head"><h1>{t(Key::TokensTitle)}</h1></div>
        <p class="muted">{t(Key::TokensIntro)}</p>
        <form class="panel new-token" on:submit=submit data-testid="token-form">
            <label class="field"><span>{t(Key::TokensName)}</span>
                <input required maxlength="64" data-testid="token-name"
                    prop:value=name on:input=move |ev| set_name.set(event_target_value(&ev)) />
            </label>
            // The roles offered follow the user's: read inside a Suspense.
            <Suspense fallback=|| ()>
                <label class="field"><span>{t(Key::TokensRole)}</span>
                    <select data-testid="token-role" on:change=move |ev| set_role.set(event_target_value(&ev))>{roles}</select>
                </label>
            </Suspense>
            <label class="field"><span>{t(Key::TokensDays)}</span>
                <input type="number" min="1" max="3650" data-testid="token-days"
                    prop:value=days on:input=move |ev| set_days.set(event_target_value(&ev)) />
            </label>
            <Suspense fallback=|| ()>
                {move || upstreams.get().and_then(|r| r.ok()).filter(|l| l.len() > 1).map(|list| {
                    let options = list.into_iter().map(|u| view! { <option value=u.name.clone()>{u.name.clone()}</option> }).collect_view();
                    view! {
                        <label class="field"><span>{t(Key::TokensUpstream)}</span>
                            <select data-testid="token-upstream"
                                on:change=move |ev| set_upstream.set(Some(event_target_value(&ev)))>{options}</select>
                        </label>
                    }
                })}
            </Suspense>
            <div class="actions">
                <button type="submit" class="btn btn-primary" data-testid="token-create"
                    disabled=move || create.pending().get()>{t(Key::TokensCreate)}</button>
            </div>
        </form>
        {made}
        <Transition fallback=|| ()>
            {move || list.get().map(|r| match r {
                Ok(tokens) if tokens.is_empty() => view! { <p class="muted" data-testid="tokens-empty">{t(Key::TokensEmpty)}</p> }.into_any(),
                Ok(tokens) => {
                    let rows = tokens.into_iter().map(|tk| view! { <Row tk revoke /> }).collect_view();
                    view! {
                        <div class="table-wrap">
                            <table class="batches" data-testid="tokens-table">
                                <thead><tr>
                                    <th>{t(Key::TokensName)}</th>
                                    <th>{t(Key::TokensColUser)}</th>
                                    <th>{t(Key::TokensRole)}</th>
                                    <th>{t(Key::TokensColCreated)}</th>
                                    <th>{t(Key::TokensColExpires)}</th>
                                    <th>{t(Key::TokensColUsed)}</th>
                                    <th></th>
                                </tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                        </div>
                    }.into_any()
                }
                Err(e) => view! { <section class="error-state"><p>{e.describe()}</p></section> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn Row(tk: TokenInfo, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    let now = crate::format::now();
    let state = if tk.revoked_at.is_some() {
        Some(t(Key::TokensRevoked))
    } else if tk.expires_at.is_some_and(|e| e <= now) {
        Some(t(Key::TokensExpired))
    } else {
        None
    };
    let live = state.is_none();
    let id = tk.id.clone();
    view! {
        <tr data-testid="token-row" data-id=tk.id.clone() data-live=live.to_string()>
            <td>
                {tk.name.clone()} " " <code class="muted">{format!("bb_{}_…", tk.id)}</code>
                {tk.upstream.clone().map(|u| view! { " " <span class="chip">{format!("→ {u}")}</span> })}
            </td>
            <td>{tk.user.clone()}</td>
            <td>{tk.role.as_str()}</td>
            <td><Time ts=tk.created_at /></td>
            <td>{tk.expires_at.map(|e| view! { <Time ts=e /> }.into_any()).unwrap_or_else(|| t(Key::TokensNever).into_any())}</td>
            <td>{match tk.last_used_at {
                Some(at) => view! { <Time ts=at /> " " <span class="muted">{tk.last_used_ip.clone().unwrap_or_default()}</span> }.into_any(),
                None => t(Key::TokensNotUsed).into_any(),
            }}</td>
            <td>{match state {
                Some(s) => view! { <span class="muted">{s}</span> }.into_any(),
                None => view! {
                    <button class="btn btn-small btn-danger" data-testid="token-revoke"
                        on:click=move |_| { revoke.dispatch(RevokeToken { id: id.clone() }); }>
                        {t(Key::TokensRevoke)}
                    </button>
                }.into_any(),
            }}</td>
        </tr>
    }
}
