//! One event through the core into the outbox: the pipeline maps it against the held cart, the
//! outbox queues what it returns, and both are kept (see [`super::persist`]) for the pages
//! after this one.

use super::persist::{self, Memory};
use super::{identity, intake, page, sender, Shared, State};
use crate::cart::Cart;
use crate::mapping::Env;
use crate::number;
use crate::outbox::{Class, Entry};
use crate::pipeline::Outcome;
use crate::protocol::Envelope;
use crate::tape::Tape;
use crate::words;
use std::rc::Rc;

/// Reads back what earlier pages left: the held cart (before any event of this page is mapped
/// against it) and the stored outbox, which then goes out. Done before the first command is
/// applied, in the first slice rather than in `start()`: the first localStorage access of a page
/// is a synchronous trip to the browser process (1–5 ms measured), which need not delay
/// "ready", since events tracked meanwhile wait in the inbox behind it.
pub fn restore(shared: &Rc<Shared>, st: &mut State) {
    if let Some(stored) = persist::cart() {
        st.pipeline.restore_cart(Cart::from_value(&stored));
    }
    // Salla's SDK too is looked for here rather than in `start` (everything `start` runs is
    // compiled before the tracker is ready), after the cart: Salla replays its history to a
    // tracker that registers late, and the replayed events are read against the held cart.
    if !intake::connect_salla(shared) {
        intake::watch_for_salla(shared);
    }
    identity::monitor_now(shared, st);
    // Events an earlier page (or a closed tab) left behind go out now.
    sender::sync(shared, st);
    if !st.outbox.is_empty() {
        sender::send_soon(shared, st);
    }
}

/// One event through the core; what it becomes is queued, and the batch window opens.
pub fn event(shared: &Rc<Shared>, st: &mut State, name: &str, payload: &Tape) {
    st.look_for_store_id();
    let now = page::now_ms();
    let env = Env {
        now_ms: now,
        shop_domain: st.shop_domain.as_deref(),
        store_id: st.store_id.as_deref(),
    };
    let processed = st.pipeline.process(name, payload, &env, page::random_id);
    for w in &processed.warnings {
        shared.log(&[&w.message()]);
    }
    // Kept once per batch window (and when the page leaves), not per change: a burst of cart
    // changes would otherwise write the whole cart to storage every time.
    st.cart_dirty |= processed.cart_changed;
    if let Some(envelope) = processed.released {
        queue(shared, st, envelope, now);
    }
    let name = &processed.name;
    let queued = matches!(processed.outcome, Outcome::Send(_) | Outcome::Held);
    match processed.outcome {
        Outcome::Send(envelope) => queue(shared, st, envelope, now),
        // Queued when released: at the end of this slice, or before whatever comes next.
        Outcome::Held => {}
        Outcome::Skipped(reason) => {
            shared.log(&[name, words::NOT_SENT_BECAUSE, reason.reason()]);
        }
        Outcome::Duplicate(id) => {
            shared.log(&[name, words::ALREADY_SEEN, &id, ")"]);
        }
        Outcome::Rejected(error) => shared.log(&[&error.message()]),
    }
    if queued || st.cart_dirty {
        sender::open_window(shared);
    }
}

/// Queues the CART the pipeline held back, if any (see `Pipeline::release`): at the end of
/// every slice of work, and before any command other than an event, so that nothing reads or
/// sends the queue without it.
pub fn release(shared: &Shared, st: &mut State) {
    // The held event's own time is the CART's date; only the page's part is taken from here.
    let env = Env {
        now_ms: 0,
        shop_domain: st.shop_domain.as_deref(),
        store_id: st.store_id.as_deref(),
    };
    if let Some(envelope) = st.pipeline.release(&env) {
        queue(shared, st, envelope, page::now_ms());
    }
}

/// Queues an envelope at `now_ms` (the caller's clock reading: a call out to the page's clock
/// per event is not free).
fn queue(shared: &Shared, st: &mut State, envelope: Envelope, now_ms: u64) {
    let json = envelope.to_json();
    let event = &envelope.event;
    shared.log(&[
        &envelope.source,
        " → ",
        event.event_type().as_str(),
        " (id ",
        &envelope.id,
        ")",
    ]);
    let entry = Entry::new(
        envelope.id,
        json,
        st.outbox.queue_time(now_ms),
        Class::of(event),
    );
    // Kept at the end of this slice, before any attempt to send it (see `keep`).
    let removed = st.outbox.push(entry);
    if !removed.is_empty() {
        shared.log(&[&number::uint(removed.len() as u64), words::LEFT_THE_QUEUE]);
    }
    st.persist.remove(&removed);
}

/// Writes the events queued since the last call to storage, as new records, and removes the
/// records whose events left the queue: at the end of every slice of work, and, tidying, before
/// anything is sent or read back from storage (see `Persist::keep`). The first refusal (quota,
/// storage disabled) moves the rest of this page to memory, with one debug message.
pub fn keep(shared: &Shared, st: &mut State, tidy: bool) {
    if !st.persist.keep(&mut st.outbox, tidy) {
        st.persist = Box::new(Memory);
        shared.log(&[words::STORAGE_REFUSED_EVENT]);
    }
}

/// Keeps the held cart if it changed since it was last kept.
pub fn save_cart(shared: &Shared, st: &mut State) {
    if !st.cart_dirty {
        return;
    }
    st.cart_dirty = false;
    if !persist::save_cart(&st.pipeline.cart().to_value()) {
        shared.log(&[words::STORAGE_REFUSED_CART]);
    }
}
