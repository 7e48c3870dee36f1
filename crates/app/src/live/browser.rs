//! One event stream per browser, not per tab.
//!
//! A browser opens at most six HTTP/1.1 connections to a host; with one
//! stream per tab, a seventh tab would never load. So one tab, the leader,
//! holds the stream and relays what it receives to the others over a
//! `BroadcastChannel`; when it closes, another tab takes over.
//!
//! The leader is chosen with the Web Locks API where the page may use it
//! (HTTPS, or localhost): the browser grants the lock to one tab at a time
//! and to the next one when that tab goes. Plain HTTP on another host has
//! no Web Locks, so there a lease in `localStorage` decides: renewed every
//! second, taken over when it is 90 s old (long, because browsers slow the
//! timers of hidden tabs to once a minute) or at once when the leader says
//! it is leaving.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, EventSource, MessageEvent};

use super::{Link, Live};
use crate::api::WatcherStatus;
use crate::format;
use crate::i18n::{status, t, tf, Key};
use batchboard_core::dashboard::BatchEvent;
use batchboard_core::{Batch, CREATED_BY};

const NOTIFY_KEY: &str = "batchboard.notify";
/// The lock, channel and lease name.
const NAME: &str = "batchboard.live";
const LEASE_MS: f64 = 90_000.0;
const RENEW: Duration = Duration::from_secs(1);
/// After a stream ends for good (not a blip the browser retries).
const RETRY: Duration = Duration::from_secs(3);
/// The stream's events, relayed to the other tabs under the same names.
const EVENTS: [&str; 4] = ["batch", "status", "resync", "budget"];

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn permitted() -> bool {
    web_sys::Notification::permission() == web_sys::NotificationPermission::Granted
}

pub fn toggle_notifications(live: Live) {
    if live.notify.get_untracked() {
        live.notify.set(false);
        if let Some(s) = storage() {
            let _ = s.remove_item(NOTIFY_KEY);
        }
        return;
    }
    let on_answer = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        let ok = permitted();
        live.notify.set(ok);
        if let (true, Some(s)) = (ok, storage()) {
            let _ = s.set_item(NOTIFY_KEY, "1");
        }
    });
    if let Ok(p) = web_sys::Notification::request_permission() {
        let _ = p.then(&on_answer);
    }
    on_answer.forget();
}

fn notify_finished(b: &Batch) {
    let opts = web_sys::NotificationOptions::new();
    let c = &b.request_counts;
    opts.set_body(&tf(
        Key::LiveNotifyBody,
        &[
            ("completed", &format::count(c.completed)),
            ("total", &format::count(c.total)),
            ("failed", &format::count(c.failed)),
        ],
    ));
    opts.set_tag(&b.id);
    let title = tf(Key::LiveNotifyTitle, &[("status", &status(&b.status))]);
    let _ = web_sys::Notification::new_with_options(&title, &opts);
}

/// A budget of this user, or of a team, reached 80 % or 100 % this month.
fn notify_budget(b: &batchboard_core::spend::BudgetStatus) {
    let opts = web_sys::NotificationOptions::new();
    let scope = t(b.scope.key());
    opts.set_body(&tf(
        Key::LiveNotifyBudgetBody,
        &[
            ("scope", &scope),
            ("name", &b.name),
            ("spent", &format::usd(b.spent_usd)),
            ("limit", &format::usd(b.limit_usd)),
            ("month", &b.month),
        ],
    ));
    opts.set_tag(&format!("budget-{}-{}", b.scope.as_str(), b.name));
    let title = tf(
        Key::LiveNotifyBudgetTitle,
        &[("percent", &format!("{:.0}", b.percent()))],
    );
    let _ = web_sys::Notification::new_with_options(&title, &opts);
}

/// This tab's part in the shared stream. Lives as long as the page.
struct Tab {
    id: String,
    live: Live,
    me: String,
    channel: Option<BroadcastChannel>,
    /// Set while this tab leads.
    source: RefCell<Option<EventSource>>,
    /// Whether leadership comes from the localStorage lease (no Web Locks).
    by_lease: Cell<bool>,
    /// Batches of mine seen unfinished: notified when they finish.
    running_mine: RefCell<HashSet<String>>,
    /// The server's version as this page was rendered, until compared
    /// with the stream's (`check`).
    rendered: Cell<Option<u64>>,
    /// Leading: the stream's version as of its last event, and whether
    /// the stream opened since its last event.
    current: Cell<Option<u64>>,
    opened: Cell<bool>,
}

pub fn connect(live: Live, me: String) {
    live.notify.set(
        permitted()
            && storage()
                .and_then(|s| s.get_item(NOTIFY_KEY).ok().flatten())
                .is_some(),
    );
    let tab = Rc::new(Tab {
        id: format!("{:x}", (js_sys::Math::random() * 1e15) as u64),
        live,
        me,
        channel: BroadcastChannel::new(NAME).ok(),
        source: RefCell::default(),
        by_lease: Cell::new(false),
        running_mine: RefCell::default(),
        rendered: Cell::new(rendered_version()),
        current: Cell::new(None),
        opened: Cell::new(false),
    });
    let Some(channel) = tab.channel.clone() else {
        // No channel to share through: this tab keeps a stream of its own.
        tab.lead();
        return;
    };
    let on_message = {
        let tab = tab.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let Some(text) = e.data().as_string() else {
                return;
            };
            if let Ok((kind, data)) = serde_json::from_str::<(String, String)>(&text) {
                tab.receive(&kind, &data);
            }
        })
    };
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    if !tab.clone().request_lock() {
        tab.by_lease.set(true);
        tab.clone().renew_lease();
        let renew = tab.clone();
        let _ = set_interval_with_handle(move || renew.clone().renew_lease(), RENEW);
    }
    // Leaving: hand the stream over at once.
    let on_hide = {
        let tab = tab.clone();
        Closure::<dyn FnMut()>::new(move || tab.leave())
    };
    if let Some(w) = web_sys::window() {
        let _ = w.add_event_listener_with_callback("pagehide", on_hide.as_ref().unchecked_ref());
    }
    on_hide.forget();
    // Ask the leader, if any, for the state of the stream.
    tab.post("hello", &tab.id);
}

/// The server's version as this page was rendered (its `<meta>`).
fn rendered_version() -> Option<u64> {
    document()
        .query_selector(&format!("meta[name={}]", super::VERSION_META))
        .ok()
        .flatten()
        .and_then(|m| m.get_attribute("content"))
        .and_then(|v| v.parse().ok())
}

impl Tab {
    fn leading(&self) -> bool {
        self.source.borrow().is_some()
    }

    fn post(&self, kind: &str, data: &str) {
        if let (Some(c), Ok(text)) = (&self.channel, serde_json::to_string(&(kind, data))) {
            let _ = c.post_message(&JsValue::from_str(&text));
        }
    }

    fn set_link(&self, link: Link) {
        self.live.link.set(link);
        if self.leading() {
            self.post("link", link.name());
        }
    }

    /// Asks the browser for the lock; the callback runs when this tab gets
    /// it and holds it (a promise never settled) until the tab goes. False
    /// when the page may not use Web Locks.
    fn request_lock(self: Rc<Self>) -> bool {
        let Some(nav) = web_sys::window().map(|w| w.navigator()) else {
            return false;
        };
        let locks = js_sys::Reflect::get(&nav, &"locks".into()).unwrap_or(JsValue::UNDEFINED);
        let request = js_sys::Reflect::get(&locks, &"request".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        let Some(request) = request else {
            return false;
        };
        let granted = Closure::<dyn FnMut(JsValue) -> js_sys::Promise>::new(move |_| {
            self.clone().lead();
            js_sys::Promise::new(&mut |_, _| {})
        });
        let asked = request.call2(&locks, &NAME.into(), granted.as_ref().unchecked_ref());
        granted.forget();
        asked.is_ok()
    }

    /// Takes or keeps the lease unless another tab holds a fresh one.
    fn renew_lease(self: Rc<Self>) {
        let Some(st) = storage() else {
            if !self.leading() {
                self.lead();
            }
            return;
        };
        let now = js_sys::Date::now();
        let holder = st.get_item(NAME).ok().flatten().and_then(|v| {
            let (id, until) = v.split_once(' ')?;
            Some((id.to_string(), until.parse::<f64>().ok()?))
        });
        match holder {
            Some((id, until)) if id != self.id && until > now => {
                if self.leading() {
                    // Another tab took over (this one was asleep too long).
                    self.follow();
                }
            }
            _ => {
                let _ = st.set_item(NAME, &format!("{} {}", self.id, now + LEASE_MS));
                if !self.leading() {
                    // Two tabs may claim at once: the last write wins, and
                    // the winner starts after the writes have settled.
                    let tab = self.clone();
                    set_timeout(
                        move || {
                            let mine = storage()
                                .and_then(|s| s.get_item(NAME).ok().flatten())
                                .is_some_and(|v| v.starts_with(&format!("{} ", tab.id)));
                            if mine && !tab.leading() {
                                tab.lead();
                            }
                        },
                        Duration::from_millis(50),
                    );
                }
            }
        }
    }

    fn leave(&self) {
        if !self.leading() {
            return;
        }
        if self.by_lease.get() {
            if let Some(st) = storage() {
                let _ = st.remove_item(NAME);
            }
        }
        self.post("gone", "");
    }

    fn follow(&self) {
        if let Some(s) = self.source.borrow_mut().take() {
            s.close();
        }
    }

    /// Opens the stream; this tab now relays it.
    fn lead(self: Rc<Self>) {
        if self.leading() {
            return;
        }
        let Ok(source) = EventSource::new("/events") else {
            return;
        };
        self.opened.set(true);
        for kind in EVENTS {
            let tab = self.clone();
            let on_event = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                let data = e.data().as_string().unwrap_or_default();
                if let Ok(v) = e.last_event_id().parse::<u64>() {
                    tab.current.set(Some(v));
                    // The stream's first event carries the version it
                    // began at: pages rendered before it missed changes.
                    if tab.opened.replace(false) {
                        tab.check(v);
                        tab.post("version", &format!("* {v}"));
                    }
                }
                tab.receive(kind, &data);
                tab.post(kind, &data);
            });
            let _ =
                source.add_event_listener_with_callback(kind, on_event.as_ref().unchecked_ref());
            on_event.forget();
        }
        let on_open = {
            let tab = self.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                // Back after a loss, or taking over from another tab:
                // changes may have been missed, so every tab reloads what
                // its pages show (later events only update rows in place).
                if tab.live.link.get_untracked() != Link::Idle {
                    tab.bump();
                    tab.post("resync", "");
                }
                tab.set_link(Link::Live);
            })
        };
        let on_error = {
            let tab = self.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| tab.clone().lost())
        };
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_open.forget();
        on_error.forget();
        *self.source.borrow_mut() = Some(source);
    }

    /// The stream failed. The browser retries by itself after a network
    /// loss, but not after a refusal (a 401 once the session has ended, a
    /// proxy's 502): then ask whether we are still signed in, and either
    /// say so or open a new stream a little later.
    fn lost(self: Rc<Self>) {
        let closed = self
            .source
            .borrow()
            .as_ref()
            .is_some_and(|s| s.ready_state() == EventSource::CLOSED);
        if !closed {
            self.set_link(Link::Reconnecting);
            return;
        }
        leptos::task::spawn_local(async move {
            let signed_in = !matches!(crate::api::auth::whoami().await, Ok(None));
            if signed_in {
                self.set_link(Link::Reconnecting);
                set_timeout(
                    move || {
                        if self.leading() {
                            self.follow();
                            self.lead();
                        }
                    },
                    RETRY,
                );
            } else {
                self.set_link(Link::SignedOut);
            }
        });
    }

    /// Refetch what the pages show, at most every 300 ms.
    fn bump(&self) {
        self.live.reload_soon();
    }

    /// Once per page: a stream at version `v` that this page was not
    /// rendered at means changes came between the render and the stream
    /// (a batch that finished while the page loaded): reload.
    fn check(&self, v: u64) {
        if let Some(r) = self.rendered.take() {
            if r != v {
                self.bump();
            }
        }
    }

    /// An event, from the stream (leader) or from the leader (others).
    fn receive(self: &Rc<Self>, kind: &str, data: &str) {
        match kind {
            "batch" => {
                let Ok(ev) = serde_json::from_str::<BatchEvent>(data) else {
                    return;
                };
                let b = &ev.batch;
                let mine = b.metadata.as_ref().and_then(|m| m.get(CREATED_BY)) == Some(&self.me);
                if mine {
                    let mut set = self.running_mine.borrow_mut();
                    if !b.status.is_terminal() {
                        set.insert(b.id.clone());
                    } else if set.remove(&b.id)
                        && self.leading()
                        && self.live.notify.get_untracked()
                    {
                        // One notification per browser: the leader's.
                        notify_finished(b);
                    }
                }
                // Each page decides whether this change reloads what it
                // shows or updates it in place.
                self.live.last.set(Some(ev));
            }
            "status" => {
                if let Ok(s) = serde_json::from_str::<WatcherStatus>(data) {
                    self.live.status.set(Some(s));
                }
            }
            "resync" => self.bump(),
            "budget" => {
                let Ok(b) = serde_json::from_str::<batchboard_core::spend::BudgetStatus>(data)
                else {
                    return;
                };
                let mine = b.scope == batchboard_core::spend::Scope::Team || b.name == self.me;
                if mine && self.leading() && self.live.notify.get_untracked() {
                    notify_budget(&b);
                }
            }
            "link" => {
                if let Some(link) = Link::from_name(data) {
                    if self.live.link.get_untracked() == Link::Reconnecting && link == Link::Live {
                        self.bump();
                    }
                    self.live.link.set(link);
                }
            }
            // The stream's version, for one tab (`id v`) or for all that
            // have not compared yet (`* v`).
            "version" => {
                if let Some((to, v)) = data.split_once(' ') {
                    if let (true, Ok(v)) = (to == "*" || to == self.id, v.parse()) {
                        self.check(v);
                    }
                }
            }
            "hello" if self.leading() => {
                if let Some(v) = self.current.get() {
                    self.post("version", &format!("{data} {v}"));
                }
                self.post("link", self.live.link.get_untracked().name());
                if let Some(s) = self
                    .live
                    .status
                    .get_untracked()
                    .and_then(|s| serde_json::to_string(&s).ok())
                {
                    self.post("status", &s);
                }
            }
            // The leader left: with a lease, claim it now (with Web Locks
            // the browser hands the lock on by itself).
            "gone" if self.by_lease.get() => self.clone().renew_lease(),
            _ => {}
        }
    }
}
