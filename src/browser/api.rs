//! What the npm module and the loader see: [`start`] and the running [`Tracker`]. Each method
//! hands the page's call to the inbox, where it is applied in order; none throws.

use super::handle::promise;
use super::inbox::Command;
use super::page::{self, Fact};
use super::persist::Local;
use super::value::{from_js, tape_of};
use super::{intake, lifecycle, Handles, Shared, State};
use crate::config::{self, Config};
use crate::contact;
use crate::delivery::Keepalive;
use crate::fifo::Fifo;
use crate::outbox::Outbox;
use crate::pipeline::Pipeline;
use crate::value::Value;
use crate::words;
use js_sys::{Function, Promise};
use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// A running tracker, as the npm module and the loader see it. Every method is safe to call
/// at any time; none throws.
#[wasm_bindgen]
pub struct Tracker {
    shared: Rc<Shared>,
}

#[wasm_bindgen]
impl Tracker {
    /// Tracks an event by name with its payload, as Salla's hook would.
    pub fn track(&self, name: JsValue, payload: JsValue) {
        self.shared.post_later(Command::Track(
            name.as_string().unwrap_or_default(),
            tape_of(&payload),
        ));
    }

    /// The npm entry queued the page's first event since the last slice took them: schedules
    /// one. `false` once the tracker stopped (nothing will take them).
    pub fn wake(&self) -> bool {
        if self.shared.stopped() {
            return false;
        }
        self.shared.schedule_slice();
        true
    }

    /// Sends what is pending now. Resolves to `true` when nothing is left waiting.
    pub fn flush(&self) -> Promise {
        // Unanswered (the tracker freed meanwhile) is not "nothing left".
        let shared = self.shared.clone();
        promise(false, move |resolve| {
            shared.post_now(Command::Flush(resolve))
        })
    }

    /// Records the shopper's consent to sending their email (overrides Salla's cookie bar).
    #[wasm_bindgen(js_name = setConsent)]
    pub fn set_consent(&self, granted: bool) {
        self.shared.post_now(Command::SetConsent(granted));
    }

    /// Names the shopper by email (sent only where `sendEmail` and consent allow).
    /// `false` for something that is not an email address.
    pub fn identify(&self, email: JsValue) -> bool {
        let email = email.as_string().unwrap_or_default();
        let ok = contact::looks_like_email(email.trim());
        if ok {
            self.shared.post_now(Command::Identify(email));
        } else {
            self.shared.log(&[words::NOT_AN_EMAIL]);
        }
        ok
    }

    /// Stops tracking: sends what is pending with `sendBeacon`, removes every listener and timer.
    pub fn shutdown(&self) {
        self.shared.post_now(Command::Shutdown);
    }
}

/// Starts the tracker. `sources` is a configuration object or an array of them, most important
/// first (`init()`, global object, `data-*`, query string). `guard` wraps every callback the
/// browser will call, so that nothing thrown escapes into the page.
///
/// `pending` is the npm entry's queue of the page's events (name, payload, name, payload …,
/// payloads already copied), taken from in order ahead of every other call (see
/// [`super::inbox`]).
///
/// Returns nothing, after saying why in the console, when the configuration is unusable.
#[wasm_bindgen]
pub fn start(sources: JsValue, guard: Function, pending: JsValue) -> Option<Tracker> {
    let sources = match from_js(&sources) {
        Value::Array(items) => items,
        one => vec![one],
    };
    let (config, warnings) = match Config::from_sources(&sources) {
        Ok(ok) => ok,
        Err(errors) => {
            for e in errors {
                page::console(true, &e.message());
            }
            return None;
        }
    };
    let window = page::window()?;
    let search = page::fact(Fact::Search).unwrap_or_default();
    let debug = config.debug || !search.is_empty() && config::debug_requested(&search);
    if debug {
        page::preload(true);
    }
    let shared = Rc::new(Shared {
        guard,
        debug,
        inbox: RefCell::new(Fifo::default()),
        pending,
        callbacks: RefCell::new(Fifo::default()),
        handles: RefCell::new(Some(Handles::default())),
        salla: OnceCell::new(),
        state: RefCell::new(State {
            pipeline: Pipeline::new(config).holding_carts(),
            outbox: Outbox::default(),
            persist: Box::new(Local::new()),
            keepalive: Keepalive::default(),
            tab: String::new(),
            // Storage is read in the first slice, before any event (see `track::restore`).
            restored: false,
            offline: page::fact(Fact::Online).is_some_and(|o| o.is_empty()),
            shop_domain: page::fact(Fact::Hostname).filter(|h| !h.is_empty()),
            store_id: None,
            store_id_looked: false,
            anonymous_id: None,
            monitoring_started: false,
            consent: None,
            cart_dirty: false,
        }),
    });
    for w in warnings {
        shared.log(&[&w.message()]);
    }
    let mut listeners = vec![intake::listen_to_dom_events(&shared, &window)];
    lifecycle::listen(&shared, &window, &mut listeners);
    shared.handles(|h| h.listeners = listeners);
    // Salla's SDK is looked for in the first slice (see `track::restore`).
    shared.schedule_slice();
    shared.log(&["ready"]);
    Some(Tracker { shared })
}
