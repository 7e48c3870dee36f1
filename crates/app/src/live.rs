//! Live updates: one `EventSource` on `/events` per tab, shared by the pages
//! through context. Pages key their resources on [`Live::version`] (all
//! changes) or [`Live::last`] (the batch that changed); the browser
//! reconnects by itself after a network blip or a server restart, and the
//! pages then reload what they show.

use leptos::prelude::*;

use crate::api::WatcherStatus;
use batchboard_core::Batch;

/// The state of the event stream, as the page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not opened yet (server rendering, or before hydration).
    Idle,
    Live,
    /// Lost; the browser is reconnecting and the page will catch up.
    Reconnecting,
}

#[derive(Clone, Copy)]
pub struct Live {
    /// Bumped (at most every 300 ms) when anything changed: list pages refetch.
    pub version: RwSignal<u64>,
    /// The last batch that changed: its page updates from it.
    pub last: RwSignal<Option<Batch>>,
    pub link: RwSignal<Link>,
    pub status: RwSignal<Option<WatcherStatus>>,
    /// "Notify me when my batches finish" is on (and permitted).
    pub notify: RwSignal<bool>,
}

pub fn provide_live() -> Live {
    let live = Live {
        version: RwSignal::new(0),
        last: RwSignal::new(None),
        link: RwSignal::new(Link::Idle),
        status: RwSignal::new(None),
        notify: RwSignal::new(false),
    };
    provide_context(live);
    live
}

pub fn use_live() -> Live {
    use_context::<Live>().unwrap_or_else(provide_live)
}

impl Live {
    /// Opens the stream (in the browser; nothing on the server). `me` is
    /// the signed-in user's name, for notifications about their batches.
    pub fn connect(self, me: String) {
        #[cfg(feature = "hydrate")]
        browser::connect(self, me);
        #[cfg(not(feature = "hydrate"))]
        let _ = (self, me);
    }

    /// Asks for permission and turns notifications on or off.
    pub fn toggle_notifications(self) {
        #[cfg(feature = "hydrate")]
        browser::toggle_notifications(self);
        #[cfg(not(feature = "hydrate"))]
        let _ = self;
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::{Cell, RefCell};
    use std::collections::HashSet;
    use std::rc::Rc;

    use leptos::prelude::*;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    use super::{Link, Live};
    use batchboard_core::{Batch, CREATED_BY};

    const NOTIFY_KEY: &str = "batchboard.notify";

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
        opts.set_body(&format!(
            "{} of {} requests completed, {} failed",
            c.completed, c.total, c.failed
        ));
        opts.set_tag(&b.id);
        let _ = web_sys::Notification::new_with_options(&format!("Batch {}", b.status), &opts);
    }

    pub fn connect(live: Live, me: String) {
        live.notify.set(
            permitted()
                && storage()
                    .and_then(|s| s.get_item(NOTIFY_KEY).ok().flatten())
                    .is_some(),
        );
        let Ok(source) = web_sys::EventSource::new("/events") else {
            return;
        };
        // Batches of mine seen unfinished in this tab: notified when they finish.
        let running_mine: Rc<RefCell<HashSet<String>>> = Rc::default();
        let pending = Rc::new(Cell::new(false));
        let bump = {
            let pending = pending.clone();
            move || {
                if pending.replace(true) {
                    return;
                }
                let pending = pending.clone();
                set_timeout(
                    move || {
                        pending.set(false);
                        live.version.update(|v| *v += 1);
                    },
                    std::time::Duration::from_millis(300),
                );
            }
        };

        let on_batch = {
            let bump = bump.clone();
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let Some(text) = e.data().as_string() else {
                    return;
                };
                let Ok(b) = serde_json::from_str::<Batch>(&text) else {
                    return;
                };
                let mine = b.metadata.as_ref().and_then(|m| m.get(CREATED_BY)) == Some(&me);
                if mine {
                    let mut set = running_mine.borrow_mut();
                    if !b.status.is_terminal() {
                        set.insert(b.id.clone());
                    } else if set.remove(&b.id) && live.notify.get_untracked() {
                        notify_finished(&b);
                    }
                }
                live.last.set(Some(b));
                bump();
            })
        };
        let on_status =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                if let Some(s) = e
                    .data()
                    .as_string()
                    .and_then(|t| serde_json::from_str(&t).ok())
                {
                    live.status.set(Some(s));
                }
            });
        let on_resync = {
            let bump = bump.clone();
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| bump())
        };
        let on_open = {
            let bump = bump.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                // Back after a loss: reload what the pages show.
                if live.link.get_untracked() == Link::Reconnecting {
                    bump();
                }
                live.link.set(Link::Live);
            })
        };
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            live.link.set(Link::Reconnecting);
        });
        let _ = source.add_event_listener_with_callback("batch", on_batch.as_ref().unchecked_ref());
        let _ =
            source.add_event_listener_with_callback("status", on_status.as_ref().unchecked_ref());
        let _ =
            source.add_event_listener_with_callback("resync", on_resync.as_ref().unchecked_ref());
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // One stream for the life of the tab.
        on_batch.forget();
        on_status.forget();
        on_resync.forget();
        on_open.forget();
        on_error.forget();
        std::mem::forget(source);
    }
}
