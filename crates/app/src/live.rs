//! Live updates: one `EventSource` on `/events` per browser, shared by its
//! tabs (see `browser.rs`), and by the pages of a tab through context.
//! Pages key their resources on [`Live::version`] (changes missed) and
//! [`Live::last`] (the batch that changed, and how); after a network blip or a
//! server restart the stream reconnects and the pages reload what they show.

use leptos::prelude::*;

use crate::api::WatcherStatus;
use batchboard_core::dashboard::BatchEvent;

/// The state of the event stream, as the page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not opened yet (server rendering, or before hydration).
    Idle,
    Live,
    /// Lost; the browser is reconnecting and the page will catch up.
    Reconnecting,
    /// The session ended (expired, or signed out in another tab): the
    /// stream will not come back until the user signs in again.
    SignedOut,
}

impl Link {
    /// The name tabs pass to each other and tests read (`data-state`).
    pub fn name(self) -> &'static str {
        match self {
            Link::Idle => "idle",
            Link::Live => "live",
            Link::Reconnecting => "reconnecting",
            Link::SignedOut => "signed-out",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        [Link::Idle, Link::Live, Link::Reconnecting, Link::SignedOut]
            .into_iter()
            .find(|l| l.name() == s)
    }
}

#[derive(Clone, Copy)]
pub struct Live {
    /// Bumped (at most every 300 ms, see [`Live::reload_soon`]) when what
    /// pages show may be stale: they reload it.
    pub version: RwSignal<u64>,
    /// A bump of `version` is already on its way.
    reload_pending: StoredValue<bool>,
    /// The last batch that changed, and how: its page updates from it, the
    /// table updates its row or reloads (see `BatchQuery::reshaped_by`).
    pub last: RwSignal<Option<BatchEvent>>,
    pub link: RwSignal<Link>,
    pub status: RwSignal<Option<WatcherStatus>>,
    /// "Notify me when my batches finish" is on (and permitted).
    pub notify: RwSignal<bool>,
}

/// The `<meta>` with the server's change count as the page was rendered.
pub const VERSION_META: &str = "bb-version";

/// On the server: the changes passed on so far, read before the page's
/// data (so a change made during the render reloads it once, needlessly,
/// rather than never).
pub fn rendered_version() -> String {
    #[cfg(feature = "ssr")]
    if let Ok(state) = crate::api::state() {
        return state.hub.version().to_string();
    }
    String::new()
}

pub fn provide_live() -> Live {
    let live = Live {
        version: RwSignal::new(0),
        reload_pending: StoredValue::new(false),
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
    /// Has pages reload what they show, at most every 300 ms (a burst of
    /// changes is one reload). Browser only: it waits on a timer.
    pub fn reload_soon(self) {
        if self.reload_pending.get_value() {
            return;
        }
        self.reload_pending.set_value(true);
        set_timeout(
            move || {
                self.reload_pending.set_value(false);
                self.version.update(|v| *v += 1);
            },
            std::time::Duration::from_millis(300),
        );
    }

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
mod browser;
