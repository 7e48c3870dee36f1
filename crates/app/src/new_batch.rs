//! Creating a batch: `/batches/new`. Choosing a file checks it in the
//! browser first: the shared validator (compiled to WASM) reads the file in
//! chunks with a progress bar, lists problems by line, and estimates tokens
//! and cost; Create stays disabled while there are problems. The file then
//! goes to `POST /api/batches`, which runs the same check again while it
//! streams and only then uploads it upstream. The upload runs through
//! XMLHttpRequest for its progress events; without JavaScript the form still
//! posts and the server's check alone applies.
//!
//! With several upstreams, the upstream is chosen first (only those the
//! user's role may create on). An Anthropic upstream takes a message
//! batch: the file's lines are checked and converted by the shared
//! converter instead, the first converted request is shown, and a default
//! `max_tokens` is asked for when a line gives none.

use leptos::prelude::*;
use leptos_meta::Title;

use super::format;
use super::session::NeedsRole;
use crate::api::auth::Role;
use crate::i18n::{msg, plural, t, tf, Key};
use batchboard_core::jobs::{parts_needed, PartLimits, DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS};
use batchboard_core::limits::Offer;
use batchboard_core::prices::PriceTable;
use batchboard_core::validate::Report;
use batchboard_core::{
    BatchError, ENDPOINTS, MAX_METADATA_KEY_CHARS, MAX_METADATA_PAIRS, MAX_METADATA_VALUE_CHARS,
};

/// The in-browser check of the chosen file.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub enum Check {
    /// No file chosen (or no JavaScript: the server checks).
    None,
    Running {
        done: f64,
        total: f64,
    },
    Done {
        report: Box<Report>,
        ms: f64,
    },
    /// The browser could not read the file.
    Unreadable(String),
}

/// What the server answered to a refused upload: its one error body.
use batchboard_core::error::ErrorBody as Refusal;
use batchboard_core::EXPIRY_SECONDS;

/// For a message batch: how many requests took the form's `max_tokens`,
/// and the first request as converted (pretty JSON).
type Conversion = (u64, Option<String>);

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
    let (check, set_check) = signal(Check::None);
    // Which file choice the running check belongs to: a newer choice stops it.
    let generation = StoredValue::new(0u64);
    let prices = LocalResource::new(crate::api::checks::pricing);
    let upstreams = Resource::new(|| (), |_| crate::api::list_upstreams());
    // The chosen upstream's shown name ("": the first).
    let (target, set_target) = signal(String::new());
    let (max_tokens, set_max_tokens) = signal(String::new());
    // For a message batch: lines that took the default max_tokens, and the
    // first request as converted.
    let (converted, set_converted) = signal(None::<Conversion>);
    let file_ref = NodeRef::<leptos::html::Input>::new();
    // Which kinds the upstreams are, for the form's fields: read in the
    // browser (the fields for Anthropic appear once it has hydrated; the
    // server's check applies in any case).
    let kinds = LocalResource::new(crate::api::list_upstreams);
    // The chosen upstream, as the browser knows it.
    let chosen = move || {
        kinds.with(|u| {
            let list = u.as_ref().and_then(|r| r.as_ref().ok())?;
            let name = target.get();
            list.iter()
                .find(|u| u.name == name)
                .or_else(|| list.first().filter(|_| name.is_empty()))
                .cloned()
        })
    };
    let messages = move || chosen().is_some_and(|u| u.message_batches);
    let windows = move || {
        chosen()
            .map(|u| u.offer.windows)
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| vec!["24h".to_string()])
    };
    // The endpoints the chosen upstream takes (all, until it is known).
    let endpoints = move || {
        chosen().map_or_else(
            || ENDPOINTS.iter().map(|e| e.to_string()).collect(),
            |u| u.offer.endpoints(),
        )
    };
    // What the chosen upstream would refuse of a checked file (the
    // server's own check, run here first), and where.
    let breach = move |report: &Report| {
        let u = chosen()?;
        let b = u.offer.check(None, report).err()?;
        Some((b, u))
    };
    // A file only too large for one batch: the parts a job of it needs.
    let job_parts = move || -> Option<u64> {
        let Check::Done { report, .. } = check.get() else {
            return None;
        };
        if !report.is_ok() || messages() {
            return None;
        }
        let (b, u) = breach(&report)?;
        Offer::job_resolves(&b).then(|| {
            let tokens = report.tokens.as_ref().map_or(0, |t| t.input_tokens);
            let limits = PartLimits::of(&u.offer, report.model.as_deref());
            parts_needed(report.requests, report.bytes, tokens, limits)
        })
    };
    // Sent without JavaScript and refused: the server kept why, for here.
    let refused = Resource::new(|| (), |_| crate::api::checks::form_refusal());
    // Used by the browser-only handlers below.
    let _ = (
        set_phase,
        set_endpoint,
        form_ref,
        set_check,
        generation,
        set_converted,
    );

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
        // The validator is a chunk of its own, loaded when a file is chosen.
        #[cfg(feature = "hydrate")]
        {
            #[leptos::lazy]
            fn lazy_check(
                ev: leptos::ev::Event,
                generation: StoredValue<u64>,
                set_check: WriteSignal<Check>,
                set_endpoint: WriteSignal<String>,
                messages: Option<WriteSignal<Option<Conversion>>>,
            ) {
                browser::check_file(ev, generation, set_check, set_endpoint, messages)
            }
            let messages = messages().then_some(set_converted);
            leptos::task::spawn_local(lazy_check(
                ev,
                generation,
                set_check,
                set_endpoint,
                messages,
            ));
        }
    };

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        let _ = &ev;
        #[cfg(feature = "hydrate")]
        {
            ev.prevent_default();
            if let Some(form) = form_ref.get() {
                browser::upload(form, set_phase, false);
            }
        }
    };
    // The same form, sent as a job of several batches.
    let on_job = move |_: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        if let Some(form) = form_ref.get() {
            browser::upload(form, set_phase, true);
        }
    };

    let uploading = move || matches!(phase.get(), Phase::Uploading(_));
    // Why Create is not possible yet, if it is not.
    let blocked = move || -> Option<String> {
        let report = match check.get() {
            Check::None => return None,
            Check::Running { .. } => return Some(t(Key::NewBlockedChecking).into()),
            Check::Unreadable(_) => return Some(t(Key::NewBlockedUnreadable).into()),
            Check::Done { report, .. } => report,
        };
        if !report.is_ok() {
            return Some(t(Key::NewBlockedProblems).into());
        }
        if let Some((b, u)) = breach(&report) {
            return Some(msg(&b.blocked(&u.name)));
        }
        if messages() {
            let defaulted = converted.get().map_or(0, |c| c.0);
            let given = max_tokens.get().trim().parse::<u64>().is_ok_and(|n| n > 0);
            return (defaulted > 0 && !given).then(|| t(Key::NewBlockedMaxTokens).into());
        }
        match report.endpoint {
            Some(e) if e != endpoint.get() => {
                Some(tf(Key::NewBlockedEndpoint, &[("endpoint", &e)]))
            }
            _ => None,
        }
    };
    let endpoint_options = move || {
        endpoints()
            .into_iter()
            .map(|e| {
                let (value, label) = (e.clone(), e.clone());
                view! { <option value=e selected=move || endpoint.get() == value>{label}</option> }
            })
            .collect_view()
    };

    view! {
        <Title text=t(Key::NewTitle) />
        <h1>{t(Key::NewTitle)}</h1>
        <Suspense fallback=|| ()>
            {move || (super::session::me().is_some() && !super::session::may(Role::Operator))
                .then(|| view! { <NeedsRole role=Role::Operator what=t(Key::NewNeedsRoleWhat) /> })}
        </Suspense>
        <form class="panel new-batch" method="post" action="/api/batches" enctype="multipart/form-data"
            node_ref=form_ref on:submit=on_submit data-testid="new-batch-form">
            <Suspense fallback=|| ()>
                {move || upstreams.get().and_then(|r| r.ok()).filter(|l| l.len() > 1).map(|list| {
                    let options = list
                        .into_iter()
                        .filter(|u| u.may_create)
                        .map(|u| {
                            let label = format!("{} ({})", u.name, u.kind);
                            view! { <option value=u.name.clone()>{label}</option> }
                        })
                        .collect_view();
                    view! {
                        <label class="field">
                            <span>{t(Key::NewUpstream)}</span>
                            <select name="upstream" data-testid="upstream-choice"
                                on:change=move |ev| {
                                    set_target.set(event_target_value(&ev));
                                    // The file is checked for an upstream: choose it again.
                                    set_check.set(Check::None);
                                    set_converted.set(None);
                                    if let Some(input) = file_ref.get() {
                                        input.set_value("");
                                    }
                                }>
                                {options}
                            </select>
                            <small class="muted">{t(Key::NewUpstreamHint)}</small>
                        </label>
                    }
                })}
            </Suspense>
            <label class="field">
                <span>{t(Key::NewFileLabel)}</span>
                <input type="file" name="file" accept=".jsonl,application/jsonl,application/x-ndjson"
                    required data-testid="file" on:change=on_file node_ref=file_ref />
                <small class="muted">{t(Key::NewFileHint)}</small>
            </label>
            <div class="file-check-slot">
                {move || view! { <CheckView check=check.get() prices=prices.get().and_then(|p| p.ok()).map(|p| p.of(&target.get()).clone()) /> }}
            </div>
            {move || converted.get().and_then(|(_, first)| first).map(|first| view! {
                <section class="panel converted" data-testid="converted-first">
                    <p>{t(Key::NewConvertedFirst)}</p>
                    <pre class="mono">{first}</pre>
                </section>
            })}
            <label class="field" class:hidden=move || !messages()>
                <span>{t(Key::NewMaxTokens)}</span>
                <input type="number" name="max_tokens" min="1" step="1" data-testid="max-tokens"
                    prop:value=max_tokens on:input=move |ev| set_max_tokens.set(event_target_value(&ev)) />
                <small class="muted">{t(Key::NewMaxTokensHint)}</small>
            </label>
            <label class="field" class:hidden=messages>
                <span>{t(Key::NewEndpoint)}</span>
                <select name="endpoint" data-testid="endpoint"
                    on:change=move |ev| set_endpoint.set(event_target_value(&ev))>
                    {endpoint_options}
                </select>
            </label>
            <label class="field" class:hidden=messages>
                <span>{t(Key::NewCompletionWindow)}</span>
                <select name="completion_window" data-testid="completion-window">
                    {move || windows().into_iter().map(|w| {
                        let label = if w == "24h" { t(Key::NewWindow24h).to_string() } else { w.clone() };
                        view! { <option value=w>{label}</option> }
                    }).collect_view()}
                </select>
            </label>
            <fieldset class="field">
                <legend>{t(Key::NewMetadata)} " " <small class="muted">{tf(Key::NewMetadataHint, &[("n", &MAX_METADATA_PAIRS)])}</small></legend>
                <For each=move || meta.get() key=|(k, _, _)| *k let((key, k, v))>
                    <div class="meta-row">
                        <input placeholder=t(Key::NewMetaKeyPlaceholder) maxlength=MAX_METADATA_KEY_CHARS.to_string() value=k
                            data-testid="meta-key"
                            on:input=move |ev| {
                                let val = event_target_value(&ev);
                                set_meta.update(|m| if let Some(r) = m.iter_mut().find(|r| r.0 == key) { r.1 = val });
                            } />
                        <input placeholder=t(Key::NewMetaValuePlaceholder) maxlength=MAX_METADATA_VALUE_CHARS.to_string() value=v
                            data-testid="meta-value"
                            on:input=move |ev| {
                                let val = event_target_value(&ev);
                                set_meta.update(|m| if let Some(r) = m.iter_mut().find(|r| r.0 == key) { r.2 = val });
                            } />
                        <button type="button" class="btn btn-small" aria-label=t(Key::NewRemovePair)
                            on:click=move |_| set_meta.update(|m| m.retain(|r| r.0 != key))>"×"</button>
                    </div>
                </For>
                <button type="button" class="btn btn-small" data-testid="add-meta"
                    disabled=move || { meta.get().len() >= MAX_METADATA_PAIRS }
                    on:click=move |_| {
                        let k = next_key.get();
                        set_next_key.set(k + 1);
                        set_meta.update(|m| m.push((k, String::new(), String::new())));
                    }>{t(Key::NewAddPair)}</button>
                <input type="hidden" name="metadata" prop:value=metadata_json />
            </fieldset>
            <label class="field" class:hidden=messages>
                <span>{t(Key::NewExpires)} " " <small class="muted">{tf(Key::NewExpiresHint, &[
                    ("min", &format::count(*EXPIRY_SECONDS.start() as u64)),
                    ("max", &format::count(*EXPIRY_SECONDS.end() as u64)),
                ])}</small></span>
                <input type="number" name="output_expires_after" min=EXPIRY_SECONDS.start().to_string() max=EXPIRY_SECONDS.end().to_string() step="1" />
            </label>
            <Suspense fallback=|| ()>
                {move || super::session::may(Role::Admin).then(|| view! {
                    <label class="inline">
                        <input type="checkbox" name="override_budget" value="1" data-testid="override-budget" />
                        " " {t(Key::NewOverrideBudget)}
                    </label>
                })}
            </Suspense>
            <div class="actions">
                <button type="submit" class="btn btn-primary" data-testid="create"
                    disabled=move || uploading() || blocked().is_some()>
                    {move || if uploading() { t(Key::NewUploading) } else { t(Key::NewCreate) }}
                </button>
                {move || blocked().map(|why| view! { <small class="muted" data-testid="create-blocked">{why}</small> })}
                {move || job_parts().map(|n| view! {
                    <button type="button" class="btn" data-testid="create-job"
                        disabled=uploading on:click=on_job>
                        {tf(Key::NewCreateJob, &[("n", &format::count(n))])}
                    </button>
                    <label class="inline">
                        {t(Key::NewMaxAttempts)} " "
                        <input type="number" name="max_attempts" min="1" max=MAX_ATTEMPTS.to_string() step="1"
                            value=DEFAULT_MAX_ATTEMPTS.to_string() data-testid="max-attempts" />
                    </label>
                    <small class="muted">{t(Key::NewCreateJobHint)}</small>
                })}
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
            <Suspense fallback=|| ()>
                {move || refused.get().and_then(|r| r.ok()).flatten().map(|r| view! { <RefusalView r /> })}
            </Suspense>
        </form>
    }
}

/// Problems (or warnings) with their line and field, and how many more
/// there are past the list.
#[component]
fn ProblemList(items: Vec<BatchError>, total: u64) -> impl IntoView {
    let more = total.saturating_sub(items.len() as u64);
    let items = items
        .into_iter()
        .map(|e| {
            let at = match (e.line, e.param.as_deref()) {
                (Some(l), Some(p)) => tf(Key::NewAtLineParam, &[("line", &l), ("param", &p)]),
                (Some(l), None) => tf(Key::NewAtLine, &[("line", &l)]),
                (None, _) => String::new(),
            };
            let text = e.msg.as_ref().map(msg).unwrap_or_else(|| e.message.clone());
            view! { <li data-line=e.line.map(|l| l.to_string())><strong>{at}</strong> {text} " " <code class="muted">{e.code}</code></li> }
        })
        .collect_view();
    view! {
        <ul class="problems">{items}</ul>
        {(more > 0).then(|| view! { <p class="muted">{tf(Key::NewMore, &[("n", &format::count(more))])}</p> })}
    }
}

#[component]
fn RefusalView(r: Refusal) -> impl IntoView {
    view! {
        <section class="error-state" data-testid="upload-error" role="alert">
            <p><strong>{r.msg.as_ref().map(msg).unwrap_or_else(|| r.message.clone())}</strong></p>
            <ProblemList items=r.errors total=r.error_count />
        </section>
    }
}

/// The in-browser check: progress, then statistics, estimates and problems.
#[component]
fn CheckView(check: Check, prices: Option<PriceTable>) -> impl IntoView {
    match check {
        Check::None => ().into_any(),
        Check::Running { done, total } => {
            let pct = if total > 0.0 { done / total * 100.0 } else { 0.0 };
            view! {
                <div class="check-progress" data-testid="check-progress" role="status">
                    <progress max="100" value=format!("{pct:.0}")></progress>
                    <span>{tf(Key::NewCheckingProgress, &[("pct", &format!("{pct:.0}")), ("size", &format::bytes(total as u64))])}</span>
                </div>
            }
            .into_any()
        }
        Check::Unreadable(why) => view! {
            <section class="error-state" data-testid="check-errors" role="alert"><p>{why}</p></section>
        }
        .into_any(),
        Check::Done { report, ms } => {
            let summary = tf(
                Key::NewSummary,
                &[
                    (
                        "requests",
                        &plural(Key::CommonRequestsOne, Key::CommonRequestsOther, report.requests),
                    ),
                    ("endpoint", &report.endpoint.clone().unwrap_or_else(|| "—".into())),
                    ("model", &report.model.clone().unwrap_or_else(|| "—".into())),
                    ("size", &format::bytes(report.bytes)),
                ],
            );
            let tokens = report.tokens.clone().map(|tok| {
                let how = if tok.encoding == "approximate" {
                    t(Key::NewTokensApproximate).to_string()
                } else if tok.exact {
                    tf(Key::NewTokensCounted, &[("encoding", &tok.encoding)])
                } else {
                    tf(Key::NewTokensExtrapolated, &[("encoding", &tok.encoding)])
                };
                view! {
                    <li data-testid="check-tokens" data-tokens=tok.input_tokens.to_string()>
                        {tf(Key::NewTokens, &[("n", &format::count(tok.input_tokens))])} " " <span class="muted">"(" {how} ")"</span>
                    </li>
                }
            });
            let cost = prices.and_then(|p| {
                let source = if p.source == batchboard_core::prices::BUILT_IN_SOURCE {
                    t(Key::PricesBuiltIn).to_string()
                } else {
                    p.source.clone()
                };
                p.estimate(&report).map(|c| {
                    let output = match c.output_max_usd {
                        Some(0.0) => t(Key::NewCostNoOutput).to_string(),
                        Some(o) => tf(Key::NewCostOutputMax, &[("usd", &format::usd(o))]),
                        None => t(Key::NewCostOutputOpen).to_string(),
                    };
                    view! {
                        <li data-testid="check-cost">
                            {tf(Key::NewCost, &[("usd", &format::usd(c.input_usd)), ("model", &c.priced_as)])} {output}
                            <br /><small class="muted">{source}</small>
                        </li>
                    }
                })
            });
            let ok = report.is_ok();
            let errors = (!ok).then(|| {
                let n = report.error_count;
                view! {
                    <section class="error-state" data-testid="check-errors" role="alert">
                        <p><strong>{plural(Key::NewProblemsOne, Key::NewProblemsOther, n)}</strong></p>
                        <ProblemList items=report.errors.clone() total=n />
                    </section>
                }
            });
            let warnings = (report.warning_count > 0).then(|| view! {
                <section class="warning-state" data-testid="check-warnings">
                    <p><strong>{t(Key::NewWarnings)}</strong></p>
                    <ProblemList items=report.warnings.clone() total=report.warning_count />
                </section>
            });
            view! {
                <section class="panel check" data-testid="file-check" data-ok=ok.to_string()
                    data-ms=format!("{ms:.0}") data-requests=report.requests.to_string()>
                    <p>
                        <strong>{if ok { t(Key::NewCheckedOk) } else { t(Key::NewCheckedBad) }}</strong>
                        {summary}
                        <span class="muted">" · " {tf(Key::TimeSeconds, &[("n", &crate::i18n::i18n().number(ms / 1000.0, 1))])}</span>
                    </p>
                    <ul class="stats">{tokens}{cost}</ul>
                    {errors}
                    {warnings}
                </section>
            }
            .into_any()
        }
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::*;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    use wasm_bindgen_futures::JsFuture;

    use super::{Check, Conversion, Phase, Refusal};
    use crate::i18n::{t, Key, Msg};
    use batchboard_core::anthropic::Converter;
    use batchboard_core::jobs::{MAX_JOB_BYTES, MAX_JOB_REQUESTS};
    use batchboard_core::validate::Validator;
    use batchboard_core::ENDPOINTS;

    /// Bytes read and checked at a time: small enough that the page stays
    /// responsive between chunks, large enough to keep the validator busy.
    const CHUNK: f64 = 4.0 * 1024.0 * 1024.0;

    /// Checks the chosen file in chunks, showing progress; selects the
    /// endpoint its requests use; then asks the server for an exact token
    /// count of the text sample.
    pub fn check_file(
        ev: leptos::ev::Event,
        generation: StoredValue<u64>,
        set_check: WriteSignal<Check>,
        set_endpoint: WriteSignal<String>,
        messages: Option<WriteSignal<Option<Conversion>>>,
    ) {
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        let file = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            .and_then(|input| input.files())
            .and_then(|f| f.get(0));
        let Some(file) = file else {
            set_check.set(Check::None);
            return;
        };
        let current = move || generation.try_get_value() == Some(mine);
        if let Some(set_converted) = messages {
            set_converted.set(None);
            return check_messages(file, current, set_check, set_converted);
        }
        leptos::task::spawn_local(async move {
            let started = js_sys::Date::now();
            // A job's limits: a file too large for one batch can be a job.
            let mut v = Validator::new(None).with_limits(MAX_JOB_REQUESTS, MAX_JOB_BYTES);
            let mut endpoint_set = false;
            let read = each_chunk(&file, &current, set_check, |buf| {
                v.chunk(buf);
                if !endpoint_set {
                    if let Some(e) = v.report().endpoint.as_deref() {
                        if ENDPOINTS.contains(&e) {
                            set_endpoint.set(e.to_string());
                        }
                        endpoint_set = true;
                    }
                }
            })
            .await;
            if !read {
                return;
            }
            let mut report = v.finish();
            report.approximate_tokens();
            let ms = js_sys::Date::now() - started;
            set_check.set(Check::Done {
                report: Box::new(report.clone()),
                ms,
            });
            // The exact encoding lives on the server: send it the sample only.
            let (Some(model), false) = (report.model.clone(), report.sample.is_empty()) else {
                return;
            };
            if let Ok(c) = crate::api::checks::count_tokens(model, report.sample.clone()).await {
                if current() {
                    report.estimate_tokens(c.tokens, &c.encoding);
                    set_check.set(Check::Done {
                        report: Box::new(report),
                        ms,
                    });
                }
            }
        });
    }

    /// Reads `file` in chunks of [`CHUNK`], handing each to `take` and
    /// showing progress; `false` when it could not be read or a newer
    /// choice took over (`current` says).
    async fn each_chunk(
        file: &web_sys::File,
        current: &impl Fn() -> bool,
        set_check: WriteSignal<Check>,
        mut take: impl FnMut(&[u8]),
    ) -> bool {
        let total = file.size();
        let mut buf: Vec<u8> = Vec::new();
        let mut offset = 0.0;
        set_check.set(Check::Running { done: 0.0, total });
        while offset < total {
            let end = (offset + CHUNK).min(total);
            let read = match file.slice_with_f64_and_f64(offset, end) {
                Ok(blob) => JsFuture::from(blob.array_buffer()).await,
                Err(e) => Err(e),
            };
            if !current() {
                return false;
            }
            let Ok(data) = read else {
                set_check.set(Check::Unreadable(t(Key::NewUnreadable).into()));
                return false;
            };
            let bytes = js_sys::Uint8Array::new(&data);
            buf.resize(bytes.length() as usize, 0);
            bytes.copy_to(&mut buf);
            take(&buf);
            offset = end;
            set_check.set(Check::Running {
                done: offset,
                total,
            });
        }
        true
    }

    /// Reads the chosen file in chunks, like [`check_file`], through the
    /// converter for an Anthropic upstream. Lines without `max_tokens` are
    /// counted (the form's value fills them in) rather than refused.
    fn check_messages(
        file: web_sys::File,
        current: impl Fn() -> bool + 'static,
        set_check: WriteSignal<Check>,
        set_converted: WriteSignal<Option<Conversion>>,
    ) {
        leptos::task::spawn_local(async move {
            let started = js_sys::Date::now();
            let mut c = Converter::new(Some(1));
            if !each_chunk(&file, &current, set_check, |buf| c.chunk(buf)).await {
                return;
            }
            let done = c.finish_all();
            let first = done
                .first
                .as_ref()
                .and_then(|f| serde_json::to_string_pretty(f).ok());
            set_converted.set(Some((done.defaulted, first)));
            set_check.set(Check::Done {
                report: Box::new(done.report),
                ms: js_sys::Date::now() - started,
            });
        });
    }

    /// Posts the form with XMLHttpRequest, reporting upload progress; on
    /// success goes to the new batch's page.
    /// `job`: sent to `POST /api/jobs` as a job of several batches, and on
    /// to the job's page.
    pub fn upload(form: web_sys::HtmlFormElement, set_phase: WriteSignal<Phase>, job: bool) {
        // The English text for the record, the reader's language on the page.
        let fail = move |m: Msg| {
            set_phase.set(Phase::Refused(Refusal {
                msg: Some(m.clone()),
                ..Refusal::transport(m.to_string())
            }))
        };
        let Ok(data) = web_sys::FormData::new_with_form(&form) else {
            return fail(Msg::new(Key::NewFormUnreadable));
        };
        // The file last, its size before it: the server then streams it on
        // to the upstream while it arrives instead of storing it first.
        if let Ok(file) = data.get("file").dyn_into::<web_sys::File>() {
            data.delete("file");
            let size = (file.size() as u64).to_string();
            if data.append_with_str("file_size", &size).is_err()
                || data
                    .append_with_blob_and_filename("file", &file, &file.name())
                    .is_err()
            {
                return fail(Msg::new(Key::NewFormUnreadable));
            }
        }
        let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
            return fail(Msg::new(Key::NewNoUpload));
        };
        let (url, page) = if job {
            ("/api/jobs", "/jobs")
        } else {
            ("/api/batches", "/batches")
        };
        if xhr.open("POST", url).is_err() {
            return fail(Msg::new(Key::NewUploadNotStarted));
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
                // A batch or a job: either has its id.
                #[derive(serde::Deserialize)]
                struct Made {
                    id: String,
                }
                match serde_json::from_str::<Made>(&body) {
                    Ok(made) => {
                        let navigate = leptos_router::hooks::use_navigate();
                        navigate(&format!("{page}/{}", made.id), Default::default());
                    }
                    Err(_) => fail(Msg::new(Key::NewAnswerUnreadable)),
                }
            } else {
                match serde_json::from_str::<Refusal>(&body) {
                    Ok(r) => set_phase.set(Phase::Refused(r)),
                    Err(_) => fail(Msg::new(Key::NewUploadFailed).arg("status", status)),
                }
            }
        });
        xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
        on_load.forget();
        let on_error =
            Closure::<dyn FnMut()>::new(move || fail(Msg::new(Key::NewUploadInterrupted)));
        xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        if xhr.send_with_opt_form_data(Some(&data)).is_err() {
            fail(Msg::new(Key::NewUploadNotStarted));
        }
    }
}
