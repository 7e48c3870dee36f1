//! Creating a batch: `/batches/new`. The file goes to `POST /api/batches`,
//! which validates it while it streams and only then uploads it upstream.
//! In the browser the upload runs through XMLHttpRequest for its progress
//! events; without JavaScript the form still posts.

use leptos::prelude::*;
use leptos_meta::Title;

use super::session::NeedsRole;
use crate::api::auth::Role;
use crate::batch::{
    BatchError, ENDPOINTS, MAX_METADATA_KEY_CHARS, MAX_METADATA_PAIRS, MAX_METADATA_VALUE_CHARS,
};

/// What the server answered to a refused upload.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Refusal {
    pub message: String,
    #[serde(default)]
    pub errors: Vec<BatchError>,
    #[serde(default)]
    pub error_count: u64,
}

#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Phase {
    Idle,
    Uploading(f64),
    Refused(Refusal),
}

#[component]
pub fn NewBatchPage() -> impl IntoView {
    let (phase, set_phase) = signal(Phase::Idle);
    let (endpoint, set_endpoint) = signal(String::from("/v1/chat/completions"));
    let (meta, set_meta) = signal(vec![(0usize, String::new(), String::new())]);
    let (next_key, set_next_key) = signal(1usize);
    let form_ref = NodeRef::<leptos::html::Form>::new();
    // Used by the browser-only handlers below.
    let _ = (set_phase, set_endpoint, form_ref);

    let metadata_json = move || {
        let m: std::collections::BTreeMap<String, String> = meta
            .get()
            .into_iter()
            .filter(|(_, k, _)| !k.trim().is_empty())
            .map(|(_, k, v)| (k.trim().to_string(), v))
            .collect();
        serde_json::to_string(&m).unwrap_or_default()
    };

    let on_file = move |ev: leptos::ev::Event| {
        let _ = &ev;
        #[cfg(feature = "hydrate")]
        browser::preset_endpoint(ev, set_endpoint);
    };

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        let _ = &ev;
        #[cfg(feature = "hydrate")]
        {
            ev.prevent_default();
            if let Some(form) = form_ref.get() {
                browser::upload(form, set_phase);
            }
        }
    };

    let uploading = move || matches!(phase.get(), Phase::Uploading(_));
    let endpoint_options = ENDPOINTS
        .iter()
        .map(|e| view! { <option value=*e selected=move || endpoint.get() == *e>{*e}</option> })
        .collect_view();

    view! {
        <Title text="New batch" />
        <h1>"New batch"</h1>
        <Suspense fallback=|| ()>
            {move || (super::session::me().is_some() && !super::session::may(Role::Operator))
                .then(|| view! { <NeedsRole role=Role::Operator what="create batches" /> })}
        </Suspense>
        <form class="panel new-batch" method="post" action="/api/batches" enctype="multipart/form-data"
            node_ref=form_ref on:submit=on_submit data-testid="new-batch-form">
            <label class="field">
                <span>"Requests file (.jsonl)"</span>
                <input type="file" name="file" accept=".jsonl,application/jsonl,application/x-ndjson"
                    required data-testid="file" on:change=on_file />
                <small class="muted">"One request per line, at most 50,000 requests and 200 MB."</small>
            </label>
            <label class="field">
                <span>"Endpoint"</span>
                <select name="endpoint" data-testid="endpoint"
                    on:change=move |ev| set_endpoint.set(event_target_value(&ev))>
                    {endpoint_options}
                </select>
            </label>
            <label class="field">
                <span>"Completion window"</span>
                <select name="completion_window"><option value="24h" selected>"24 hours"</option></select>
            </label>
            <fieldset class="field">
                <legend>"Metadata " <small class="muted">{format!("(up to {MAX_METADATA_PAIRS} pairs)")}</small></legend>
                <For each=move || meta.get() key=|(k, _, _)| *k let((key, k, v))>
                    <div class="meta-row">
                        <input placeholder="key" maxlength=MAX_METADATA_KEY_CHARS.to_string() value=k
                            data-testid="meta-key"
                            on:input=move |ev| {
                                let val = event_target_value(&ev);
                                set_meta.update(|m| if let Some(r) = m.iter_mut().find(|r| r.0 == key) { r.1 = val });
                            } />
                        <input placeholder="value" maxlength=MAX_METADATA_VALUE_CHARS.to_string() value=v
                            data-testid="meta-value"
                            on:input=move |ev| {
                                let val = event_target_value(&ev);
                                set_meta.update(|m| if let Some(r) = m.iter_mut().find(|r| r.0 == key) { r.2 = val });
                            } />
                        <button type="button" class="btn btn-small" aria-label="Remove pair"
                            on:click=move |_| set_meta.update(|m| m.retain(|r| r.0 != key))>"×"</button>
                    </div>
                </For>
                <button type="button" class="btn btn-small" data-testid="add-meta"
                    disabled=move || meta.get().len() >= MAX_METADATA_PAIRS
                    on:click=move |_| {
                        let k = next_key.get();
                        set_next_key.set(k + 1);
                        set_meta.update(|m| m.push((k, String::new(), String::new())));
                    }>"Add pair"</button>
                <input type="hidden" name="metadata" prop:value=metadata_json />
            </fieldset>
            <label class="field">
                <span>"Output files expire after " <small class="muted">"(optional, seconds: 3600 to 2592000)"</small></span>
                <input type="number" name="output_expires_after" min="3600" max="2592000" step="1" />
            </label>
            <div class="actions">
                <button type="submit" class="btn btn-primary" data-testid="create" disabled=uploading>
                    {move || if uploading() { "Uploading…" } else { "Create batch" }}
                </button>
            </div>
            {move || match phase.get() {
                Phase::Idle => ().into_any(),
                Phase::Uploading(p) => view! {
                    <div class="upload-progress" data-testid="upload-progress">
                        <progress max="100" value=format!("{:.0}", p * 100.0)></progress>
                        <span>{format!("{:.0}%", p * 100.0)}</span>
                    </div>
                }.into_any(),
                Phase::Refused(r) => view! { <RefusalView r /> }.into_any(),
            }}
        </form>
    }
}

#[component]
fn RefusalView(r: Refusal) -> impl IntoView {
    let more = r.error_count.saturating_sub(r.errors.len() as u64);
    let items = r
        .errors
        .into_iter()
        .map(|e| {
            let at = match (e.line, e.param.as_deref()) {
                (Some(l), Some(p)) => format!("Line {l}, {p}: "),
                (Some(l), None) => format!("Line {l}: "),
                (None, _) => String::new(),
            };
            view! { <li><strong>{at}</strong> {e.message} <code class="muted">{e.code}</code></li> }
        })
        .collect_view();
    view! {
        <section class="error-state" data-testid="upload-error" role="alert">
            <p><strong>{r.message}</strong></p>
            <ul>{items}</ul>
            {(more > 0).then(|| view! { <p class="muted">{format!("…and {more} more.")}</p> })}
        </section>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::*;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    use super::{Phase, Refusal};

    /// Reads the first line of the chosen file and selects its `url`.
    pub fn preset_endpoint(ev: leptos::ev::Event, set_endpoint: WriteSignal<String>) {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        let Ok(head) = file.slice_with_i32_and_i32(0, 64 * 1024) else {
            return;
        };
        leptos::task::spawn_local(async move {
            let Ok(text) = wasm_bindgen_futures::JsFuture::from(head.text()).await else {
                return;
            };
            let text = text.as_string().unwrap_or_default();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(first) {
                if let Some(url) = v.get("url").and_then(|u| u.as_str()) {
                    if crate::batch::ENDPOINTS.contains(&url) {
                        set_endpoint.set(url.to_string());
                    }
                }
            }
        });
    }

    /// Posts the form with XMLHttpRequest, reporting upload progress; on
    /// success goes to the new batch's page.
    pub fn upload(form: web_sys::HtmlFormElement, set_phase: WriteSignal<Phase>) {
        let fail = move |message: String| {
            set_phase.set(Phase::Refused(Refusal {
                message,
                ..Refusal::default()
            }))
        };
        let Ok(data) = web_sys::FormData::new_with_form(&form) else {
            return fail("The form could not be read.".into());
        };
        let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
            return fail("This browser cannot upload files.".into());
        };
        if xhr.open("POST", "/api/batches").is_err() {
            return fail("The upload could not start.".into());
        }
        let _ = xhr.set_request_header("accept", "application/json");
        set_phase.set(Phase::Uploading(0.0));
        if let Ok(up) = xhr.upload() {
            let on_progress = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(
                move |e: web_sys::ProgressEvent| {
                    if e.length_computable() && e.total() > 0.0 {
                        set_phase.set(Phase::Uploading(e.loaded() / e.total()));
                    }
                },
            );
            up.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
            on_progress.forget();
        }
        let xhr2 = xhr.clone();
        let on_load = Closure::<dyn FnMut()>::new(move || {
            let status = xhr2.status().unwrap_or(0);
            let body = xhr2.response_text().ok().flatten().unwrap_or_default();
            if (200..300).contains(&status) {
                match serde_json::from_str::<crate::batch::Batch>(&body) {
                    Ok(b) => {
                        let navigate = leptos_router::hooks::use_navigate();
                        navigate(&format!("/batches/{}", b.id), Default::default());
                    }
                    Err(_) => fail("The server's answer could not be read.".into()),
                }
            } else {
                match serde_json::from_str::<Refusal>(&body) {
                    Ok(r) => set_phase.set(Phase::Refused(r)),
                    Err(_) => fail(format!("The upload failed (HTTP {status}).")),
                }
            }
        });
        xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
        on_load.forget();
        let on_error = Closure::<dyn FnMut()>::new(move || {
            fail("The upload was interrupted: the server could not be reached.".into())
        });
        xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        if xhr.send_with_opt_form_data(Some(&data)).is_err() {
            fail("The upload could not start.".into());
        }
    }
}
