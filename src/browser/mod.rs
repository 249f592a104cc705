//! The browser shell: the only part of the crate that touches `js-sys`/`web-sys`. It moves
//! values between the page and the pure core; every decision (what an event becomes, what to
//! batch, when to retry) is the core's.
//!
//! Flow, one direction: intake (`intake`) → [`Shared::receive`] → core pipeline → outbox →
//! `transport` → the receiver's answer back into the outbox.
//!
//! Re-entrancy: Salla replays its history synchronously inside `registerTracker`, and a page may
//! dispatch an event from inside another. Incoming events therefore go to an inbox first and are
//! processed by whoever holds the state, so the state is never borrowed twice.

mod handle;
mod intake;
mod lease;
mod storage;
mod transport;
pub mod value;

use crate::cart::Cart;
use crate::config::{self, Config};
use crate::contact;
use crate::mapping::Env;
use crate::number;
use crate::outbox::{self, Class, Entry, Outbox, Verdict, MAX_BODY_BYTES};
use crate::pipeline::{Outcome, Pipeline};
use crate::protocol;
use crate::value::Value;
use handle::{Listener, Then, Timeout};
use js_sys::{Function, Promise, Reflect};
use lease::Turn;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use value::{from_js, Snapshot};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// How long a burst may gather before it is sent as one request.
const BATCH_WINDOW_MS: u32 = 40;
/// Longest stretch of event processing before the tracker yields to the page: a burst of events
/// must never become a long task (> 50 ms) on the shop's main thread.
const SLICE_MS: f64 = 8.0;
/// How many times the batch window waits for a burst still being processed.
const MAX_WINDOW_EXTENSIONS: u32 = 5;
/// Browsers refuse `keepalive` requests once their bodies in flight pass 64 KiB, and Chromium
/// gives a finished request's share back only some time after its answer (never, for an answer
/// with `Cache-Control: no-store`, in Chromium 156). Half the limit leaves room for that lag.
const KEEPALIVE_BUDGET: usize = 32_000;
/// Where the held cart is kept between pages.
const CART_KEY: &str = "sm_salla_cart";
/// Each queued event is kept under this prefix and its id, so tabs never overwrite each other.
const OUTBOX_PREFIX: &str = "sm:o:";
/// When another tab holds the send lease, look again after this long.
const LEASE_RETRY_MS: u32 = 2_000;
const PREFIX: &str = "[salesmanago]";

/// State shared by the tracker handle and every callback the browser holds.
pub struct Shared {
    guard: Function,
    debug: bool,
    inbox: RefCell<VecDeque<(String, Snapshot)>>,
    /// The next slice of inbox processing, when one is scheduled.
    slice: RefCell<Option<Timeout>>,
    state: RefCell<State>,
}

struct State {
    pipeline: Pipeline,
    outbox: Outbox,
    /// This tab's name for the storage lease.
    tab: String,
    /// The page's storage takes our writes; when it stops, the outbox lives in memory only.
    storage_ok: bool,
    /// The cart and the outbox were read back from storage (see `Shared::restore`).
    restored: bool,
    /// `navigator.onLine` said no: sending waits for the `online` event.
    offline: bool,
    /// The last queue time handed out: queue times are strictly increasing within a tab, so a
    /// burst in one millisecond keeps its order when read back from storage.
    last_queued_ms: u64,
    lease_retry: Option<Timeout>,
    shop_domain: Option<String>,
    store_id: Option<String>,
    consent: Option<bool>,
    in_flight_bytes: usize,
    /// `keepalive` fetches failed on this page while others worked: send without it from now
    /// on (leaving the page is covered by `sendBeacon`).
    keepalive_broken: bool,
    /// The held cart changed since it was last written to storage.
    cart_dirty: bool,
    stopped: bool,
    flush_timer: Option<Timeout>,
    retry_timer: Option<Timeout>,
    listeners: Vec<Listener>,
    salla: Option<intake::SallaHook>,
    salla_watch: Vec<Listener>,
    salla_look: Option<Timeout>,
}

#[wasm_bindgen]
extern "C" {
    /// The page's `window` (`None` outside a page).
    #[wasm_bindgen(thread_local_v2, js_name = window)]
    static WINDOW: Option<web_sys::Window>;
}

/// The page's window. Read from the `window` global directly: `web_sys::window()` looks for the
/// global object four ways and checks it with `instanceof`, seven imports for one value.
fn window() -> Option<web_sys::Window> {
    WINDOW.with(Clone::clone)
}

fn unstore(ids: &[String]) {
    for id in ids {
        storage::remove(&[OUTBOX_PREFIX, id].concat());
    }
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    let filled = window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        for b in &mut bytes {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    protocol::event_id(bytes)
}

fn console(warn: bool, message: &str) {
    let (p, m) = (JsValue::from_str(PREFIX), JsValue::from_str(message));
    if warn {
        web_sys::console::warn_2(&p, &m);
    } else {
        web_sys::console::log_2(&p, &m);
    }
}

/// Salla's store id (`Salla.config.get('store.id')`), the default `location`.
fn salla_store_id() -> Option<String> {
    let window: JsValue = window()?.into();
    let config = Reflect::get(
        &Reflect::get(&window, &"Salla".into()).ok()?,
        &"config".into(),
    )
    .ok()?;
    let get: Function = Reflect::get(&config, &"get".into()).ok()?.dyn_into().ok()?;
    let id = get.call1(&config, &"store.id".into()).ok()?;
    match from_js(&id) {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) if n.is_finite() => Some(crate::protocol::millis_text(n as u64)),
        _ => None,
    }
}

/// Salla's record of the cookie bar (`Salla.storage.get('cookies-consent')`).
fn salla_consent() -> Option<String> {
    let window: JsValue = window()?.into();
    let storage = Reflect::get(
        &Reflect::get(&window, &"Salla".into()).ok()?,
        &"storage".into(),
    )
    .ok()?;
    let get: Function = Reflect::get(&storage, &"get".into())
        .ok()?
        .dyn_into()
        .ok()?;
    get.call1(&storage, &"cookies-consent".into())
        .ok()?
        .as_string()
}

fn smclient_cookie() -> Option<String> {
    let document = window()?.document()?;
    // A page's document is an HTMLDocument, which is where `cookie` is.
    let cookies = document
        .unchecked_into::<web_sys::HtmlDocument>()
        .cookie()
        .ok()?;
    contact::cookie_value(&cookies, "smclient").map(str::to_owned)
}

impl Shared {
    fn log(&self, message: &str) {
        if self.debug {
            console(false, message);
        }
    }

    /// Takes one event from any intake. The payload is copied out of the page at once (the page
    /// may reuse its object); reading, mapping and queueing happen in the next task, in slices,
    /// so that the page's own call stays cheap however many events it sends at once.
    fn receive(self: &Rc<Self>, name: String, payload: &JsValue) {
        self.inbox
            .borrow_mut()
            .push_back((name, Snapshot::take(payload)));
        self.schedule_slice();
    }

    fn schedule_slice(self: &Rc<Self>) {
        let Ok(mut slot) = self.slice.try_borrow_mut() else {
            return;
        };
        if slot.is_some() {
            return;
        }
        let weak = Rc::downgrade(self);
        *slot = Timeout::new(0, &self.guard, move || {
            if let Some(s) = weak.upgrade() {
                if let Ok(mut slot) = s.slice.try_borrow_mut() {
                    *slot = None;
                }
                let until = js_sys::Date::now() + SLICE_MS;
                s.drain_while(|| js_sys::Date::now() < until);
                if !s.inbox.borrow().is_empty() {
                    s.schedule_slice();
                }
            }
        });
    }

    /// Processes the whole inbox now (before sending, when the page leaves, on shutdown).
    fn drain(self: &Rc<Self>) {
        self.drain_while(|| true);
    }

    /// Processes the inbox while `more()` says so, unless someone up the stack already holds the
    /// state (then they do).
    fn drain_while(self: &Rc<Self>, more: impl Fn() -> bool) {
        self.restore();
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return;
        };
        let mut queued = false;
        while more() {
            let next = self.inbox.borrow_mut().pop_front();
            let Some((name, payload)) = next else {
                break;
            };
            if !state.stopped {
                queued |= self.handle(&mut state, &name, &payload.read());
            }
        }
        if (queued || state.cart_dirty) && state.flush_timer.is_none() {
            self.arm_flush(&mut state, 0);
        }
    }

    /// Sends what is queued after the batch window. While a burst is still being processed in
    /// slices, the window is extended (a few times at most), so that a burst still goes out as
    /// one request on a slow device.
    fn arm_flush(self: &Rc<Self>, state: &mut State, extended: u32) {
        let weak = Rc::downgrade(self);
        state.flush_timer = Timeout::new(BATCH_WINDOW_MS, &self.guard, move || {
            let Some(s) = weak.upgrade() else {
                return;
            };
            let busy = !s.inbox.borrow().is_empty();
            if let Ok(mut st) = s.state.try_borrow_mut() {
                st.flush_timer = None;
                if busy && extended < MAX_WINDOW_EXTENSIONS {
                    s.arm_flush(&mut st, extended + 1);
                    return;
                }
                s.save_cart(&mut st);
            }
            s.send_soon();
        });
    }

    /// One event through the core; `true` if something was queued for sending.
    fn handle(&self, state: &mut State, name: &str, payload: &Value) -> bool {
        if state.store_id.is_none() {
            state.store_id = salla_store_id();
        }
        let now = now_ms();
        let env = Env {
            now_ms: now,
            shop_domain: state.shop_domain.as_deref(),
            store_id: state.store_id.as_deref(),
        };
        let processed = state.pipeline.process(name, payload, &env, random_id);
        for w in &processed.warnings {
            self.log(&w.message());
        }
        // Saved once per batch window (and when the page leaves), not per change: a burst of
        // cart changes would otherwise write the whole cart to storage every time.
        state.cart_dirty |= processed.cart_changed;
        match processed.outcome {
            Outcome::Send(envelope) => {
                let json = envelope.to_value().to_json();
                self.log(
                    &[
                        &processed.name,
                        " → ",
                        envelope.event.event_type().as_str(),
                        " (id ",
                        &envelope.id,
                        ")",
                    ]
                    .concat(),
                );
                let class = match envelope.event.event_type() {
                    crate::salesmanago::ExternalEventType::Purchase => Class::Purchase,
                    crate::salesmanago::ExternalEventType::Cart => {
                        Class::Cart(envelope.event.external_id().map(str::to_owned))
                    }
                    _ => Class::Other,
                };
                let queued = now.max(state.last_queued_ms + 1);
                state.last_queued_ms = queued;
                let entry = Entry::new(envelope.id, json, queued, class);
                self.store(state, &entry);
                let removed = state.outbox.push(entry);
                if !removed.is_empty() {
                    self.log(
                        &[
                            &number::uint(removed.len() as u64),
                            " older event(s) left the queue (a newer cart replaced them, or the \
                             queue was full)",
                        ]
                        .concat(),
                    );
                }
                unstore(&removed);
                true
            }
            Outcome::Skipped(reason) => {
                self.log(&[&processed.name, ": not sent, ", reason.reason()].concat());
                false
            }
            Outcome::Duplicate(id) => {
                self.log(&[&processed.name, ": already seen (event_id ", &id, ")"].concat());
                false
            }
            Outcome::Rejected(error) => {
                self.log(&error.message());
                false
            }
        }
    }

    /// Writes the held cart to storage if it changed since the last write.
    fn save_cart(&self, state: &mut State) {
        if !state.cart_dirty {
            return;
        }
        state.cart_dirty = false;
        if !storage::save(CART_KEY, &state.pipeline.cart().to_value()) {
            self.log("the page's storage refused the cart; it is kept for this page only");
        }
    }

    /// Writes a queued event to storage, before any attempt to send it. The first refusal (quota,
    /// storage disabled) turns storage off for this page, with one debug message.
    fn store(&self, state: &mut State, entry: &Entry) {
        if !state.storage_ok {
            return;
        }
        if !storage::save(&[OUTBOX_PREFIX, &entry.id].concat(), &entry.to_record()) {
            state.storage_ok = false;
            self.log("the page's storage refused an event; this page's events are kept in memory");
        }
    }

    /// Reads back what earlier pages left: the held cart (before any event of this page is
    /// mapped against it) and the stored outbox, which then goes out. Done once, in the first
    /// slice rather than in `start()`: the first localStorage access of a page is a synchronous
    /// trip to the browser process (1–5 ms measured), which need not delay "ready", since
    /// events tracked meanwhile wait in the inbox and are mapped after it.
    fn restore(self: &Rc<Self>) {
        {
            let Ok(mut st) = self.state.try_borrow_mut() else {
                return;
            };
            if st.restored {
                return;
            }
            st.restored = true;
            if let Some(stored) = storage::load(CART_KEY) {
                st.pipeline.restore_cart(Cart::from_value(&stored));
            }
        }
        // Events an earlier page (or a closed tab) left behind go out now.
        self.sync_from_storage();
        if !self.state.borrow().outbox.is_empty() {
            self.clone().send_soon();
        }
    }

    /// Makes this tab's queue what storage holds: its own events, other tabs', earlier pages'.
    /// Damaged records are removed; events past the maximum age are dropped.
    fn sync_from_storage(&self) {
        let Ok(mut st) = self.state.try_borrow_mut() else {
            return;
        };
        if !st.storage_ok {
            return;
        }
        let mut stored = Vec::new();
        for id in storage::keys_with_prefix(OUTBOX_PREFIX) {
            // A stored event never changes once written: the copy this tab holds is as good as
            // storage's, and far cheaper than reading and parsing it again on every send.
            if let Some(held) = st.outbox.entries().iter().find(|e| e.id == id) {
                stored.push(held.clone());
                continue;
            }
            let key = [OUTBOX_PREFIX, &id].concat();
            match storage::load(&key).and_then(|r| Entry::from_record(&id, &r)) {
                Some(entry) => stored.push(entry),
                None => {
                    storage::remove(&key);
                    self.log("a damaged stored event was removed");
                }
            }
        }
        st.outbox.sync(stored);
        let expired = st.outbox.expire(now_ms());
        if !expired.is_empty() {
            self.log(
                &[
                    &number::uint(expired.len() as u64),
                    " event(s) older than the maximum age dropped",
                ]
                .concat(),
            );
        }
        unstore(&expired);
    }

    fn contact(&self, state: &State) -> protocol::Contact {
        let consent = state
            .consent
            .unwrap_or_else(|| contact::consent_allows_email(salla_consent().as_deref()));
        state
            .pipeline
            .contact(smclient_cookie().as_deref(), consent)
    }

    /// Starts sending what is due, in the background (timers, `online`, start-up).
    fn send_soon(self: Rc<Self>) {
        self.send_due(Turn::IfFree, Box::new(|_| {}));
    }

    /// [`Shared::send_soon`] after `ms`, unless the tracker is gone by then.
    fn send_after(self: &Rc<Self>, ms: u32) -> Option<Timeout> {
        let weak = Rc::downgrade(self);
        Timeout::new(ms, &self.guard, move || {
            if let Some(s) = weak.upgrade() {
                s.send_soon();
            }
        })
    }

    /// Sends what is due: under the cross-tab lease when the outbox is shared through storage.
    /// Then tells `then` whether the outbox is empty.
    fn send_due(self: Rc<Self>, turn: Turn, then: Then) {
        let (offline, shared, tab) = match self.state.try_borrow() {
            Ok(st) => (st.offline, st.storage_ok, st.tab.clone()),
            Err(_) => return then(false),
        };
        if offline {
            self.log("offline: sending waits for the connection");
            return then(false);
        }
        if !shared {
            return self.send_loop(then);
        }
        let me = self.clone();
        let job: lease::Job = Box::new(move |release| {
            me.sync_from_storage();
            me.send_loop(release);
        });
        let guard = self.guard.clone();
        lease::run_exclusively(
            &guard,
            &tab,
            turn,
            job,
            Box::new(move |ran| {
                if !ran {
                    // Another tab is sending; it takes this tab's stored events too. Look again
                    // later.
                    let timer = self.send_after(LEASE_RETRY_MS);
                    if let Ok(mut st) = self.state.try_borrow_mut() {
                        st.lease_retry = timer;
                    }
                }
                let empty = self.state.try_borrow().is_ok_and(|st| st.outbox.is_empty());
                then(empty)
            }),
        );
    }

    /// Sends every due batch, one request at a time, until the outbox is empty or the receiver
    /// fails. Then tells `then` whether the outbox is empty.
    fn send_loop(self: Rc<Self>, then: Then) {
        let request = {
            let Ok(mut st) = self.state.try_borrow_mut() else {
                return then(false);
            };
            let now = now_ms();
            let batch = if st.stopped {
                None
            } else {
                st.outbox.take(now, MAX_BODY_BYTES)
            };
            let Some(batch) = batch else {
                let empty = st.outbox.is_empty();
                drop(st);
                return then(empty);
            };
            let contact = self.contact(&st);
            let config = st.pipeline.config();
            let body = protocol::body(&config.client_id, now, &contact, &batch.events);
            let endpoint = config.endpoint.clone();
            let keepalive =
                !st.keepalive_broken && st.in_flight_bytes + body.len() <= KEEPALIVE_BUDGET;
            st.in_flight_bytes += body.len();
            (batch, body, endpoint, keepalive)
        };
        let (batch, body, endpoint, keepalive) = request;
        let guard = self.guard.clone();
        let sent_bytes = body.len();
        transport::post(&endpoint, &body, keepalive, &guard, move |answer| {
            self.answered(batch, sent_bytes, keepalive, answer, then)
        });
    }

    /// What the receiver's answer (or its absence) means for `batch`; then the next batch, unless
    /// the answer says to wait.
    fn answered(
        self: Rc<Self>,
        batch: outbox::Batch,
        sent_bytes: usize,
        keepalive: bool,
        answer: Result<transport::Answer, ()>,
        then: Then,
    ) {
        let Ok(mut st) = self.state.try_borrow_mut() else {
            return then(false);
        };
        st.in_flight_bytes -= sent_bytes;
        let n = batch.ids.len();
        if answer.is_err() && keepalive {
            // The browser's keepalive quota, not the network, is the likely cause: try the
            // same batch again at once without it.
            st.keepalive_broken = true;
            st.outbox.release(&batch.ids);
            drop(st);
            self.log("a keepalive request failed; sending without keepalive on this page");
            return self.send_loop(then);
        }
        let status = answer.as_ref().ok().map(|a| a.status);
        match outbox::verdict(status) {
            Verdict::Accepted => {
                st.outbox.ack(&batch.ids);
                unstore(&batch.ids);
                self.log(
                    &[
                        "sent ",
                        &number::uint(n as u64),
                        " event(s); the receiver answered ",
                        &number::uint(status.unwrap_or(0).into()),
                    ]
                    .concat(),
                );
            }
            Verdict::Refused => {
                st.outbox.refuse(&batch.ids);
                unstore(&batch.ids);
                self.log(
                    &[
                        "the receiver refused ",
                        &number::uint(n as u64),
                        " event(s) with ",
                        &number::uint(status.unwrap_or(0).into()),
                        "; they are dropped",
                    ]
                    .concat(),
                );
            }
            Verdict::Retry => {
                let retry_after = answer
                    .as_ref()
                    .ok()
                    .and_then(|a| outbox::retry_after_ms(a.retry_after.as_deref()));
                let now = now_ms();
                st.outbox
                    .retry(&batch.ids, now, js_sys::Math::random(), retry_after);
                let wait = st.outbox.not_before_ms().saturating_sub(now);
                let answer = match status {
                    Some(s) => ["the receiver answered ", &number::uint(s.into())].concat(),
                    None => "the receiver could not be reached".to_owned(),
                };
                self.log(
                    &[
                        &answer,
                        "; ",
                        &number::uint(n as u64),
                        " event(s) retry in ",
                        &number::uint(wait),
                        " ms",
                    ]
                    .concat(),
                );
                st.retry_timer = self.send_after(wait as u32);
                drop(st);
                return then(false);
            }
        }
        drop(st);
        self.send_loop(then)
    }

    /// The page is going away: hand everything not yet in flight to `sendBeacon`, which
    /// delivers after the page is gone. The events stay in storage until a receiver's 2xx is
    /// seen: if the beacon was lost, the next page sends them (the receiver deduplicates by id).
    fn send_on_exit(self: &Rc<Self>) {
        self.drain();
        let Ok(mut st) = self.state.try_borrow_mut() else {
            return;
        };
        self.save_cart(&mut st);
        let now = now_ms();
        while let Some(batch) = st.outbox.take_for_exit(now, MAX_BODY_BYTES) {
            let contact = self.contact(&st);
            let config = st.pipeline.config();
            let body = protocol::body(&config.client_id, now, &contact, &batch.events);
            let taken = transport::beacon(&config.endpoint, &body);
            crate::delivery::beaconed(&mut st.outbox, &batch.ids, taken, now);
            if !taken {
                break;
            }
            self.log(
                &[
                    "page hidden: ",
                    &number::uint(batch.ids.len() as u64),
                    " event(s) handed to sendBeacon",
                ]
                .concat(),
            );
        }
    }

    /// Looks for Salla and registers; `true` once registered (now or before).
    fn connect_salla(self: &Rc<Self>) -> bool {
        if self
            .state
            .try_borrow()
            .map_or(true, |st| st.salla.is_some() || st.stopped)
        {
            return true;
        }
        // Registration replays Salla's history into `receive`: the state must not be borrowed.
        let Some(hook) = intake::register_with_salla(self) else {
            return false;
        };
        if let Ok(mut st) = self.state.try_borrow_mut() {
            st.salla = Some(hook);
            st.salla_watch.clear();
            st.salla_look = None;
        }
        self.drain();
        true
    }

    fn set_salla_look(&self, look: Option<Timeout>) {
        if let Ok(mut st) = self.state.try_borrow_mut() {
            st.salla_look = look;
        }
    }
}

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
        self.shared
            .receive(name.as_string().unwrap_or_default(), &payload);
    }

    /// Sends what is pending now. Resolves to `true` when nothing is left waiting.
    pub fn flush(&self) -> Promise {
        let shared = self.shared.clone();
        shared.drain();
        if let Ok(mut st) = shared.state.try_borrow_mut() {
            st.flush_timer = None;
        }
        handle::promise(|resolve| {
            shared.send_due(
                Turn::Wait,
                Box::new(move |empty| resolve(JsValue::from_bool(empty))),
            )
        })
    }

    /// Records the shopper's consent to sending their email (overrides Salla's cookie bar).
    #[wasm_bindgen(js_name = setConsent)]
    pub fn set_consent(&self, granted: bool) {
        if let Ok(mut st) = self.shared.state.try_borrow_mut() {
            st.consent = Some(granted);
        }
        self.shared.log(if granted {
            "consent given"
        } else {
            "consent refused: no email is sent"
        });
    }

    /// Names the shopper by email (sent only where `sendEmail` and consent allow).
    /// `false` for something that is not an email address.
    pub fn identify(&self, email: JsValue) -> bool {
        let email = email.as_string().unwrap_or_default();
        let ok = self
            .shared
            .state
            .try_borrow_mut()
            .is_ok_and(|mut st| st.pipeline.identify(&email));
        if !ok {
            self.shared.log("identify: not an email address; ignored");
        }
        ok
    }

    /// Stops tracking: sends what is pending with `sendBeacon`, removes every listener and timer.
    pub fn shutdown(&self) {
        self.shared.send_on_exit();
        if let Ok(mut st) = self.shared.state.try_borrow_mut() {
            st.stopped = true;
            st.flush_timer = None;
            st.retry_timer = None;
            st.listeners.clear();
            st.salla_watch.clear();
            st.salla_look = None;
        }
        self.shared.log("stopped");
    }
}

fn install_panic_hook() {
    // The default hook formats the panic message; ours says one actionable thing. The trap that
    // follows reaches the page-side guard, which turns the tracker quiet.
    std::panic::set_hook(Box::new(|_| {
        console(
            true,
            "internal error; the tracker has stopped (the shop is not affected)",
        );
    }));
}

/// Starts the tracker. `sources` is a configuration object or an array of them, most important
/// first (`init()`, global object, `data-*`, query string). `guard` wraps every callback the
/// browser will call, so that nothing thrown escapes into the page.
///
/// Returns nothing, after saying why in the console, when the configuration is unusable.
#[wasm_bindgen]
pub fn start(sources: JsValue, guard: Function) -> Option<Tracker> {
    install_panic_hook();
    let sources = match from_js(&sources) {
        Value::Array(items) => items,
        one => vec![one],
    };
    let (config, warnings) = match Config::from_sources(&sources) {
        Ok(ok) => ok,
        Err(errors) => {
            for e in errors {
                console(true, &e.message());
            }
            return None;
        }
    };
    let window = window()?;
    let location = window.location();
    let debug = config.debug || config::debug_requested(&location.search().unwrap_or_default());
    let pipeline = Pipeline::new(config);
    let shared = Rc::new(Shared {
        guard,
        debug,
        inbox: RefCell::new(VecDeque::new()),
        slice: RefCell::new(None),
        state: RefCell::new(State {
            pipeline,
            outbox: Outbox::default(),
            tab: random_id(),
            storage_ok: true,
            restored: false,
            offline: !window.navigator().on_line(),
            last_queued_ms: 0,
            lease_retry: None,
            shop_domain: location.hostname().ok().filter(|h| !h.is_empty()),
            store_id: None,
            consent: None,
            in_flight_bytes: 0,
            keepalive_broken: false,
            cart_dirty: false,
            stopped: false,
            flush_timer: None,
            retry_timer: None,
            listeners: Vec::new(),
            salla: None,
            salla_watch: Vec::new(),
            salla_look: None,
        }),
    });
    for w in warnings {
        shared.log(&w.message());
    }

    let mut listeners: Vec<Listener> = intake::listen_to_dom_events(&shared).into_iter().collect();
    let exit = {
        let weak = Rc::downgrade(&shared);
        move |_| {
            if let Some(s) = weak.upgrade() {
                s.send_on_exit();
            }
        }
    };
    listeners.extend(Listener::new(
        &window,
        "pagehide",
        &shared.guard,
        exit.clone(),
    ));
    if let Some(document) = window.document() {
        let weak = Rc::downgrade(&shared);
        let page = document.clone();
        listeners.extend(Listener::new(
            &document,
            "visibilitychange",
            &shared.guard,
            move |e| {
                let hidden = page.visibility_state() == web_sys::VisibilityState::Hidden;
                if hidden && weak.upgrade().is_some() {
                    exit(e);
                }
            },
        ));
    }
    for (kind, online) in [("offline", false), ("online", true)] {
        let weak = Rc::downgrade(&shared);
        listeners.extend(Listener::new(&window, kind, &shared.guard, move |_| {
            let Some(s) = weak.upgrade() else {
                return;
            };
            if let Ok(mut st) = s.state.try_borrow_mut() {
                st.offline = !online;
                if online {
                    st.outbox.resume();
                }
            }
            s.log(if online {
                "online: sending resumes"
            } else {
                "offline: sending paused"
            });
            if online {
                s.send_soon();
            }
        }));
    }
    shared.state.borrow_mut().listeners = listeners;

    // Storage is read in the first slice, right after this task (see `Shared::restore`).
    shared.schedule_slice();

    if !shared.connect_salla() {
        let (watch, look) = intake::watch_for_salla(&shared);
        let mut st = shared.state.borrow_mut();
        st.salla_watch = watch;
        st.salla_look = look;
    }
    shared.log("ready");
    Some(Tracker { shared })
}
