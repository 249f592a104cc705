//! The one place that borrows the tracker's [`State`]: every piece of work — the page's calls,
//! the browser's callbacks (timers, answers, the lease, the page's life) — arrives as a
//! [`Command`] and is applied in order.
//!
//! The page's `track` calls do not enter the wasm one by one: the npm entry copies each payload
//! and queues it in JavaScript (`Shared::pending`), and the queue is read in one call, ahead of
//! any call that does enter the wasm (a DOM event, Salla's hook, `flush` …), and whenever the
//! inbox runs dry. The trips into the wasm and back for every event were about a quarter of a
//! burst's time (`node bench/compare.mjs --event=viewed`: 133–141 → 102–117 µs/event).
//!
//! The page's calls are applied in the order the page made them: events are read and mapped in
//! slices of at most [`SLICE_MS`], so that a burst never becomes a long task on the shop's main
//! thread, and a call of another kind (`identify`, `setConsent`, `flush`, `shutdown`) first
//! applies every event before it (an `identify` after a `Signed Out` stays after it). The
//! browser's callbacks have a lane of their own, ahead of the events still waiting to be read:
//! a send at the end of the batch window sends what is queued so far during a long burst.
//!
//! Nothing is ever skipped because the state is in use. Salla replays its history
//! synchronously inside `registerTracker`, a page may call the tracker from inside an event the
//! tracker caused, a storage lease runs its job at once: a command that arrives while commands
//! are being applied joins its lane, and the loop already running applies it in turn.

use super::handle::{Then, Timeout};
use super::lease::Turn;
use super::value;
use super::{identity, lifecycle, sender, track, Shared, State, Timer};
use crate::delivery::{Answer, Request};
use crate::tape::Tape;
use crate::words;
use std::rc::Rc;

/// Longest stretch of work before the tracker yields to the page: a burst of events must never
/// become a long task (> 50 ms) on the shop's main thread.
const SLICE_MS: f64 = 8.0;

/// How many of the npm entry's queued events are read in one go when the inbox runs dry: the
/// reading is one call whatever the count, but a slice must stay short.
const TAKE_AT_ONCE: u32 = 64;

/// A piece of work on the state.
pub enum Command {
    /// An event from any intake: its name and its payload, read onto a tape.
    Track(String, Tape),
    /// The page's word on consent to sending the email.
    SetConsent(bool),
    /// The shopper's email (already checked to look like one).
    Identify(String),
    /// Send what is pending now; then told whether nothing is left waiting.
    Flush(Then),
    /// The page is hidden or left: hand what is waiting to `sendBeacon`.
    Exit,
    /// Stop: hand what is waiting to `sendBeacon` and unregister everything.
    Shutdown,
    /// The connection is back (`true`) or lost.
    Online(bool),
    /// The batch window closed after this many extensions.
    WindowClosed(u32),
    /// Send what is due, in the background (a retry, the lease free again).
    SendDue,
    /// The send lease is ours: send, then call the continuation (which releases the lease).
    Leased(Then),
    /// The lease is over (`true`: the sending ran; `false`: another tab held it); then told
    /// whether nothing is left waiting.
    LeaseOver(bool, Then),
    /// A request ended (`Err`: no answer); then the rest of the sending.
    Answered(Request, Result<Answer, ()>, Then),
    /// The receiver's 2xx named the shopper's SALESmanago contact id.
    ContactNamed(String),
    /// Which of these ids the receiver holds (none, without a usable answer); then the rest of
    /// the sending.
    Confirmed(Vec<String>, Vec<String>, Then),
}

impl Shared {
    /// Queues a page's event for the next slice: the page's call stays cheap however many
    /// events it sends at once.
    pub fn post_later(self: &Rc<Self>, command: Command) {
        if self.stopped() {
            return;
        }
        self.take_pending(u32::MAX);
        self.queue(command);
        self.schedule_slice();
    }

    /// Applies a page's call now, with every event queued before it, however long that takes
    /// (also the page leaving, which must be done before it is gone).
    pub fn post_now(self: &Rc<Self>, command: Command) {
        self.take_pending(u32::MAX);
        self.queue(command);
        self.run(f64::INFINITY);
    }

    /// One copy of the inbox's push for its three callers.
    #[inline(never)]
    fn queue(&self, command: Command) {
        self.inbox.borrow_mut().push(command);
    }

    /// Moves up to `max` of the events the npm entry queued into the inbox, in order: before
    /// any call that arrives through the wasm, and whenever the inbox runs dry.
    fn take_pending(&self, max: u32) {
        value::take(&self.pending, max, &mut |name, payload| {
            self.queue(Command::Track(name, payload));
        });
    }

    /// Applies a browser callback now, ahead of the events still waiting to be read.
    pub fn callback(self: &Rc<Self>, command: Command) {
        self.callbacks.borrow_mut().push(command);
        self.run(SLICE_MS);
    }

    pub fn schedule_slice(self: &Rc<Self>) {
        if self.has_timer(Timer::Slice) {
            return;
        }
        let weak = Rc::downgrade(self);
        let slice = Timeout::new(0, &self.guard, move || {
            if let Some(s) = weak.upgrade() {
                s.set_timer(Timer::Slice, None);
                s.run(SLICE_MS);
            }
        });
        self.set_timer(Timer::Slice, slice);
    }

    /// Applies commands for `ms` at most (the first one in any case), then leaves the rest to
    /// the next slice.
    fn run(self: &Rc<Self>, ms: f64) {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            // Commands are being applied further up the stack: that loop takes this one too
            // (within its own time: a `flush` called from inside an event the tracker caused
            // may wait for the next slice, never longer).
            return;
        };
        if !state.restored {
            state.restored = true;
            track::restore(self, &mut state);
        }
        let until = js_sys::Date::now() + ms;
        state.store_id_looked = false;
        // The clock is read after every command but events, and after every fourth event: a
        // burst's events take tens of µs each, and a read of the clock is a call out of the
        // wasm (a few % of a burst when made for each).
        let mut events = 0u32;
        let more = loop {
            let next = self.callbacks.borrow_mut().pop();
            let next = next.or_else(|| self.inbox.borrow_mut().pop());
            let Some(command) = next.or_else(|| {
                self.take_pending(TAKE_AT_ONCE);
                self.inbox.borrow_mut().pop()
            }) else {
                break false;
            };
            if matches!(command, Command::Track(..)) {
                events += 1;
            } else {
                events = 0;
            }
            self.apply(&mut state, command);
            if events % 4 == 0 && js_sys::Date::now() >= until {
                break true;
            }
        };
        // What this slice queued is written once, here (see `track::keep`).
        track::release(self, &mut state);
        track::keep(self, &mut state, false);
        drop(state);
        if more {
            self.schedule_slice();
        }
    }

    fn apply(self: &Rc<Self>, st: &mut State, command: Command) {
        if !matches!(command, Command::Track(..)) {
            track::release(self, st);
        }
        match command {
            Command::Track(name, payload) => {
                if !self.stopped() {
                    track::event(self, st, &name, &payload);
                }
            }
            Command::SetConsent(granted) => {
                st.consent = Some(granted);
                identity::monitor_now(self, st);
                self.log(&[if granted {
                    words::CONSENT_GIVEN
                } else {
                    words::CONSENT_REFUSED
                }]);
            }
            Command::Identify(email) => {
                st.pipeline.identify(&email);
            }
            Command::Flush(then) => {
                self.set_timer(Timer::Window, None);
                sender::send_due(self, st, Turn::Wait, then);
            }
            Command::Exit => sender::exit(self, st),
            Command::Shutdown => {
                sender::exit(self, st);
                // Every listener and timer unregisters as it is dropped.
                self.handles.replace(None);
                self.log(&["stopped"]);
            }
            Command::Online(online) => lifecycle::online(self, st, online),
            Command::WindowClosed(extended) => sender::window_closed(self, st, extended),
            Command::SendDue => sender::send_soon(self, st),
            Command::Leased(release) => sender::leased(self, st, release),
            Command::LeaseOver(ran, then) => sender::lease_over(self, st, ran, then),
            Command::Answered(request, answer, then) => {
                sender::answered(self, st, request, answer, then)
            }
            Command::ContactNamed(id) => identity::contact_named(self, st, &id),
            Command::Confirmed(asked, held, then) => sender::confirmed(self, st, asked, held, then),
        }
    }
}
