//! The browser shell: the only part of the crate that touches `js-sys`/`web-sys`. It moves
//! values between the page and the pure core; every decision (what an event becomes, what to
//! batch, when to send or retry, what to drop) is the core's.
//!
//! Flow, one direction: [`intake`] (Salla's hook, DOM events) and [`api`] (the page's calls) →
//! [`inbox`] → [`track`] (core pipeline → outbox, kept by [`persist`]) → [`sender`] (under
//! [`lease`], through [`transport`]) → the receiver's answer back into the outbox.
//!
//! The rooms:
//! - [`api`]: `start` and the [`api::Tracker`] the page holds;
//! - [`inbox`]: every piece of work as a [`inbox::Command`], applied in order; the one place
//!   that borrows the [`State`];
//! - [`track`]: one event through the core into the outbox;
//! - [`sender`]: sending what is due, and what the answers mean, as [`crate::delivery`] says;
//! - [`lease`]: one sending tab at a time; [`transport`]: `fetch` and `sendBeacon`;
//! - [`persist`]: where the outbox and the cart are kept between pages (storage or memory);
//! - [`identity`]: who a batch is from and about, and what consent lets the tracker write and
//!   load (the `smclient` cookie, SALESmanago's monitoring script);
//! - [`lifecycle`]: the page hidden or left, the connection lost or back;
//! - [`intake`]: Salla's hook and the DOM events; [`page`]: what the page tells (clock, ids,
//!   cookie, consent); [`value`]: JavaScript values read safely; [`handle`]: listeners and
//!   timers that unregister when dropped.

mod api;
mod handle;
mod identity;
mod inbox;
mod intake;
mod lease;
mod lifecycle;
mod page;
mod persist;
mod sender;
mod track;
mod transport;
pub mod value;

pub use api::{start, Tracker};

use crate::delivery::Keepalive;
use crate::fifo::Fifo;
use crate::outbox::Outbox;
use crate::pipeline::Pipeline;
use handle::{Listener, Timeout};
use inbox::Command;
use js_sys::Function;
use persist::Persist;
use std::cell::{OnceCell, RefCell};
use wasm_bindgen::JsValue;

/// What the tracker shares with every callback the browser holds (through a `Weak`, so that
/// a callback outliving the tracker does nothing).
pub(crate) struct Shared {
    /// Wraps every callback the browser will call: nothing thrown escapes into the page.
    guard: Function,
    debug: bool,
    /// The page's calls waiting to be applied, in order (see [`inbox`]).
    inbox: RefCell<Fifo<Command>>,
    /// The page's events the npm entry queued, before any in `inbox` (see [`inbox`]): a
    /// JavaScript array, or `undefined`.
    pending: JsValue,
    /// The browser's callbacks waiting to be applied, in order, ahead of the page's events.
    callbacks: RefCell<Fifo<Command>>,
    /// What the tracker registered with the browser; `None` once it stopped.
    handles: RefCell<Option<Handles>>,
    /// Our registration with Salla. Salla cannot unregister a tracker, so it lives as long as
    /// the tracker; what it receives after shutdown is ignored.
    salla: OnceCell<intake::SallaHook>,
    /// Borrowed by [`inbox`] only.
    state: RefCell<State>,
}

/// Everything the tracker registered with the browser, dropped as a whole on shutdown (each
/// handle unregisters itself when dropped).
#[derive(Default)]
struct Handles {
    /// One of each [`Timer`] at most.
    timers: [Option<Timeout>; 5],
    /// Catalog events on `window`, and the page's life (hidden, left, online, offline).
    listeners: Vec<Listener>,
    /// Watching for a Salla SDK that loads after the tracker.
    salla_watch: Option<Listener>,
}

/// The tracker's timers.
#[derive(Clone, Copy)]
enum Timer {
    /// The next slice of inbox work.
    Slice,
    /// The batch window.
    Window,
    /// The next attempt after a failure.
    Retry,
    /// The next look at a lease another tab held.
    LeaseRetry,
    /// The next look for a Salla SDK that loads after the tracker.
    SallaLook,
}

/// The tracker's state: the core's, and what the shell learnt of the page.
struct State {
    pipeline: Pipeline,
    outbox: Outbox,
    /// Where the outbox and the cart are kept: the page's storage until it refuses a write,
    /// then memory.
    persist: Box<dyn Persist>,
    keepalive: Keepalive,
    /// This tab's name for the send lease, made at its first use (see [`State::tab`]).
    tab: String,
    /// The cart and the outbox were read back from storage (see [`track::restore`]).
    restored: bool,
    /// `navigator.onLine` said no: sending waits for the `online` event.
    offline: bool,
    shop_domain: Option<String>,
    store_id: Option<String>,
    /// The store id was looked for in this slice (and not found).
    store_id_looked: bool,
    /// This browser's anonymous id, once a batch needed it (see [`identity`]).
    anonymous_id: Option<String>,
    /// SALESmanago's monitoring script was added (or found) on this page.
    monitoring_started: bool,
    /// The page's own word on consent (`setConsent`), over Salla's cookie bar.
    consent: Option<bool>,
    /// The held cart changed since it was last kept.
    cart_dirty: bool,
}

impl State {
    /// This tab's name for the send lease. Made when first needed rather than in `start`:
    /// everything `start` runs is compiled by the browser before the tracker is ready.
    fn tab(&mut self) -> &str {
        if self.tab.is_empty() {
            self.tab = page::random_id();
        }
        &self.tab
    }

    /// Looks for Salla's store id while it is unknown, once per slice: on a page without Salla
    /// (yet) each look misses on `window`, whose named-property lookup is slow, and a burst paid
    /// it per event.
    fn look_for_store_id(&mut self) {
        if self.store_id.is_none() && !self.store_id_looked {
            self.store_id_looked = true;
            self.store_id = page::salla_store_id();
        }
    }
}

impl Shared {
    /// Writes the debug log's line made of `parts`; with debug off nothing is joined, so the
    /// line costs an event nothing.
    fn log(&self, parts: &[&str]) {
        if self.debug {
            page::console(false, &crate::words::cat(parts));
        }
    }

    fn stopped(&self) -> bool {
        self.handles.borrow().is_none()
    }

    /// Changes the handles; nothing once the tracker stopped (what `change` would register is
    /// then dropped at once). Never calls into the page while they are borrowed.
    fn handles(&self, change: impl FnOnce(&mut Handles)) {
        if let Some(h) = self.handles.borrow_mut().as_mut() {
            change(h);
        }
    }

    /// Sets a timer, replacing (clearing) the one before; `None` only clears it.
    fn set_timer(&self, which: Timer, timer: Option<Timeout>) {
        self.handles(|h| h.timers[which as usize] = timer);
    }

    fn has_timer(&self, which: Timer) -> bool {
        let mut has = false;
        self.handles(|h| has = h.timers[which as usize].is_some());
        has
    }
}

/// The lines of a text the page handed back (storage keys, ids), each its own string. A loop:
/// `split().map(to_owned).collect()` in its three callers was ~300 B of the wasm.
fn owned_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        out.push(line.to_owned());
    }
    out
}
