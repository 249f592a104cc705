//! Sending what the outbox holds: the batch window, the cross-tab lease, one request at a time,
//! each answer applied as [`crate::delivery`] says, and `sendBeacon` when the page goes away.
//!
//! Every step that waits on the browser (the window's timer, the lease, the request) comes back
//! through the inbox as a [`Command`], carrying the continuation that finishes the sending.

use super::handle::{Then, Timeout};
use super::inbox::Command;
use super::lease::{self, Turn};
use super::{identity, page, track, transport, Shared, State, Timer};
use crate::delivery::{self, Answer, Next, Request, BATCH_WINDOW_MS, LEASE_RETRY_MS};
use crate::number;
use crate::outbox::{MAX_BODY_BYTES, MAX_REQUEST_BYTES};
use crate::words;
use std::rc::Rc;

/// Sets `timer` to hand `command` to the inbox after `ms`, unless the tracker is gone by then.
fn later(shared: &Rc<Shared>, timer: Timer, ms: u32, command: Command) {
    let weak = Rc::downgrade(shared);
    let t = Timeout::new(ms, &shared.guard, move || {
        if let Some(s) = weak.upgrade() {
            s.callback(command);
        }
    });
    shared.set_timer(timer, t);
}

/// Opens the batch window, unless it is open: what is queued until it closes goes as one
/// request.
pub fn open_window(shared: &Rc<Shared>) {
    if !shared.has_timer(Timer::Window) {
        later(
            shared,
            Timer::Window,
            BATCH_WINDOW_MS,
            Command::WindowClosed(0),
        );
    }
}

/// The batch window closed: sends, or waits once more for a burst still being read.
pub fn window_closed(shared: &Rc<Shared>, st: &mut State, extended: u32) {
    let busy = !shared.inbox.borrow().is_empty();
    if let Some(n) = delivery::extend_window(busy, extended) {
        return later(
            shared,
            Timer::Window,
            BATCH_WINDOW_MS,
            Command::WindowClosed(n),
        );
    }
    shared.set_timer(Timer::Window, None);
    track::save_cart(shared, st);
    send_soon(shared, st);
}

/// Sends what is due, in the background (nobody waits for the outcome).
pub fn send_soon(shared: &Rc<Shared>, st: &mut State) {
    send_due(shared, st, Turn::IfFree, Box::new(|_| {}));
}

/// Sends what is due: under the cross-tab lease when the outbox is shared through storage.
/// Then tells `then` whether the outbox is empty.
pub fn send_due(shared: &Rc<Shared>, st: &mut State, turn: Turn, then: Then) {
    if st.offline {
        shared.log(&[words::OFFLINE_WAITS]);
        return then(false);
    }
    if !st.persist.shared() {
        return send_next(shared, st, then);
    }
    let (job, over) = (Rc::downgrade(shared), Rc::downgrade(shared));
    lease::run_exclusively(
        &shared.guard,
        st.tab(),
        turn,
        Box::new(move |release| {
            if let Some(s) = job.upgrade() {
                s.callback(Command::Leased(release));
            }
        }),
        Box::new(move |ran| {
            if let Some(s) = over.upgrade() {
                s.callback(Command::LeaseOver(ran, then));
            }
        }),
    );
}

/// The lease is ours: this tab's queue becomes what storage holds, then it goes out.
pub fn leased(shared: &Rc<Shared>, st: &mut State, release: Then) {
    sync(shared, st);
    send_next(shared, st, release);
}

/// The lease is over. If another tab held it, that tab sends this tab's stored events too;
/// look again later all the same.
pub fn lease_over(shared: &Rc<Shared>, st: &mut State, ran: bool, then: Then) {
    if !ran {
        later(shared, Timer::LeaseRetry, LEASE_RETRY_MS, Command::SendDue);
    }
    then(st.outbox.is_empty());
}

/// Makes this tab's queue what storage holds: its own events, other tabs', earlier pages'.
/// Damaged records are removed; events past the maximum age are dropped.
pub fn sync(shared: &Shared, st: &mut State) {
    track::keep(shared, st, true);
    let Some((stored, damaged)) = st.persist.events(st.outbox.entries()) else {
        return;
    };
    for _ in 0..damaged {
        shared.log(&[words::DAMAGED]);
    }
    st.outbox.sync(stored);
    if let Some((sent, ids)) = st.persist.take_unanswered() {
        st.outbox.unconfirmed(&ids, sent);
    }
    let expired = st.outbox.expire(page::now_ms());
    if !expired.is_empty() {
        shared.log(&[&number::uint(expired.len() as u64), words::TOO_OLD]);
    }
    st.persist.remove(&expired);
}

/// Sends the next due batch; the answer comes back as [`Command::Answered`]. With nothing due,
/// tells `then` whether the outbox is empty.
fn send_next(shared: &Rc<Shared>, st: &mut State, then: Then) {
    // Nothing goes out before it is kept.
    track::keep(shared, st, true);
    let now = page::now_ms();
    if !shared.stopped() {
        match st.outbox.take_confirm(now) {
            Ok(ids) if !ids.is_empty() => return confirm(shared, st, now, ids, then),
            Ok(_) => {}
            // The earlier page's request may still be on its way: look again then (the rest of
            // the queue goes now).
            Err(at) => later(shared, Timer::Retry, (at - now) as u32, Command::SendDue),
        }
    }
    let batch = match shared.stopped() {
        true => None,
        false => st.outbox.take(now, MAX_REQUEST_BYTES),
    };
    let Some(batch) = batch else {
        return then(st.outbox.is_empty());
    };
    let body = identity::body(shared, st, now, &batch.events);
    let keepalive = st.keepalive.begin(body.len());
    let request = Request {
        batch,
        bytes: body.len(),
        keepalive,
    };
    let (weak, named) = (Rc::downgrade(shared), Rc::downgrade(shared));
    transport::post(
        &st.pipeline.config().endpoint,
        &body,
        keepalive,
        &shared.guard,
        move |answer| {
            if let Some(s) = weak.upgrade() {
                s.callback(Command::Answered(request, answer, then));
            }
        },
        move |contact_id| {
            if let Some(s) = named.upgrade() {
                s.callback(Command::ContactNamed(contact_id));
            }
        },
    );
}

/// Asks the receiver which of `ids` (sent by an earlier page that never saw the answer) it holds;
/// the answer comes back as [`Command::Confirmed`].
fn confirm(shared: &Rc<Shared>, st: &mut State, now: u64, ids: Vec<String>, then: Then) {
    let body = identity::confirm_body(st, now, &ids);
    let weak = Rc::downgrade(shared);
    transport::ask(
        &st.pipeline.config().endpoint,
        &body,
        &shared.guard,
        move |held| {
            if let Some(s) = weak.upgrade() {
                s.callback(Command::Confirmed(ids, held, then));
            }
        },
    );
}

/// The receiver's word on an earlier page's events: those it holds leave storage, the others
/// go again whole (also when there was no usable answer: nothing is lost for a confirmation).
pub fn confirmed(
    shared: &Rc<Shared>,
    st: &mut State,
    asked: Vec<String>,
    ids: Vec<String>,
    then: Then,
) {
    let held = st.outbox.confirmed(&asked, &ids);
    st.persist.remove(&held);
    shared.log(&[
        words::HELD,
        &number::uint(held.len() as u64),
        words::OF,
        &number::uint(asked.len() as u64),
        words::HELD_REST,
    ]);
    send_next(shared, st, then)
}

/// What the receiver's answer (or its absence) means for the request's events; then the next
/// batch, unless the answer says to wait.
pub fn answered(
    shared: &Rc<Shared>,
    st: &mut State,
    request: Request,
    answer: Result<Answer, ()>,
    then: Then,
) {
    let n = number::uint(request.batch.ids.len() as u64);
    let now = page::now_ms();
    let next = delivery::answered(
        &mut st.outbox,
        &mut st.keepalive,
        &request,
        answer,
        now,
        page::random(),
    );
    let ids = &request.batch.ids;
    match next {
        Next::Unanswered => shared.log(&[words::KEEPALIVE_FAILED]),
        Next::Accepted(status) => {
            st.persist.remove(ids);
            shared.log(&[
                words::SENT,
                &n,
                words::SENT_ANSWERED,
                &number::uint(status.into()),
            ]);
        }
        Next::Refused(status) => {
            st.persist.remove(ids);
            shared.log(&[
                words::REFUSED,
                &n,
                words::REFUSED_WITH,
                &number::uint(status.into()),
                words::DROPPED,
            ]);
        }
        Next::Retry { status, wait_ms } => {
            let answer = match status {
                Some(s) => words::cat(&[words::ANSWERED, &number::uint(s.into())]),
                None => words::UNREACHABLE.to_owned(),
            };
            shared.log(&[
                &answer,
                "; ",
                &n,
                words::RETRY_IN,
                &number::uint(wait_ms),
                " ms",
            ]);
            later(shared, Timer::Retry, wait_ms as u32, Command::SendDue);
            return then(false);
        }
    }
    send_next(shared, st, then)
}

/// The page is going away: hand everything not yet in flight to `sendBeacon`, which delivers
/// after the page is gone. The events stay in storage until a receiver's 2xx is seen: if the
/// beacon was lost, the next page sends them (the receiver deduplicates by id).
pub fn exit(shared: &Shared, st: &mut State) {
    track::keep(shared, st, true);
    track::save_cart(shared, st);
    let now = page::now_ms();
    // What leaves without this page seeing the answer: asked about by the next page, not resent.
    let mut unanswered = String::new();
    st.outbox.unanswered(&mut unanswered);
    while let Some(batch) = st.outbox.take_for_exit(now, MAX_BODY_BYTES) {
        let body = identity::body(shared, st, now, &batch.events);
        let taken = transport::beacon(&st.pipeline.config().endpoint, &body);
        delivery::beaconed(&mut st.outbox, &batch.ids, taken, now);
        if !taken {
            break;
        }
        for id in &batch.ids {
            unanswered.push('\n');
            unanswered.push_str(id);
        }
        shared.log(&[
            words::BEACON,
            &number::uint(batch.ids.len() as u64),
            words::BEACON_TAKEN,
        ]);
    }
    st.persist.keep_unanswered(now, &unanswered);
}
