//! The Sessions page (admins): everyone signed in now, and "End session".

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use super::components::Time;
use crate::api::auth::{EndSession, SessionInfo};
use crate::i18n::{t, Key};

#[component]
pub fn SessionsPage() -> impl IntoView {
    let end = ServerAction::<EndSession>::new();
    // Listed again after each ending.
    let list = Resource::new(
        move || end.version().get(),
        |_| crate::api::auth::list_sessions(),
    );
    let result = move || {
        end.value().get().map(|r| match r {
            Ok(()) => view! { <p class="ok" role="status">{t(Key::SessionsEnded)}</p> }.into_any(),
            Err(e) => view! { <p class="error" role="alert">{e.describe()}</p> }.into_any(),
        })
    };
    view! {
        <Title text=t(Key::SessionsTitle) />
        <div class="page-head"><h1>{t(Key::SessionsTitle)}</h1></div>
        <p class="muted">{t(Key::SessionsIntro)}</p>
        <div aria-live="polite" data-testid="session-result">{result}</div>
        <Transition fallback=|| ()>
            {move || {
                list.get().map(|r| match r {
                    Ok(sessions) if sessions.is_empty() => {
                        view! { <p class="muted">{t(Key::SessionsEmpty)}</p> }.into_any()
                    }
                    Ok(sessions) => {
                        let rows = sessions
                            .into_iter()
                            .map(|s| view! { <Row s end /> })
                            .collect_view();
                        view! {
                            <div class="table-wrap">
                                <table class="batches" data-testid="sessions-table">
                                    <thead><tr>
                                        <th>{t(Key::SessionsColUser)}</th>
                                        <th>{t(Key::SessionsColAddress)}</th>
                                        <th>{t(Key::SessionsColStarted)}</th>
                                        <th>{t(Key::SessionsColSeen)}</th>
                                        <th></th>
                                    </tr></thead>
                                    <tbody>{rows}</tbody>
                                </table>
                            </div>
                        }
                        .into_any()
                    }
                    Err(e) => view! {
                        <section class="error-state" data-testid="sessions-error">
                            <h2>{t(Key::SessionsLoadFailed)}</h2>
                            <p>{e.describe()}</p>
                        </section>
                    }
                    .into_any(),
                })
            }}
        </Transition>
    }
}

#[component]
fn Row(s: SessionInfo, end: ServerAction<EndSession>) -> impl IntoView {
    let pending = end.pending();
    view! {
        <tr data-testid="session-row" data-user=s.user.clone() data-current=s.current.to_string()>
            <td>
                {s.user.clone()}
                {s.current.then(|| view! { " " <span class="chip">{t(Key::SessionsThisSession)}</span> })}
            </td>
            <td class="mono">{s.address.clone().unwrap_or_else(|| "—".into())}</td>
            <td><Time ts=s.started_at /></td>
            <td><Time ts=s.last_seen_at /></td>
            <td>
                // A form: ending a session works without JavaScript too.
                <ActionForm action=end>
                    <input type="hidden" name="handle" value=s.handle.clone() />
                    <button type="submit" class="btn btn-small btn-danger" data-testid="end-session" disabled=move || pending.get()>
                        {move || if pending.get() { t(Key::SessionsEnding) } else { t(Key::SessionsEnd) }}
                    </button>
                </ActionForm>
            </td>
        </tr>
    }
}
