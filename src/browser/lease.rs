//! One sender at a time across the store's tabs. Every tab writes its events to the shared
//! outbox in storage; only the tab holding the lease sends, so no event goes out twice because
//! two tabs picked it up together.
//!
//! The lease is a Web Lock (`navigator.locks`, released by the browser even if the tab dies), or,
//! where Web Locks are missing, a record in storage that expires.

use super::handle::{executor, settle, Then};
use super::persist as storage;
use crate::value::Value;
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

const LOCK_NAME: &str = "salla-salesmanago-outbox";
const LEASE_KEY: &str = "sm:lease";
/// How long a storage lease holds without renewal: longer than one request may take.
const LEASE_MS: f64 = 30_000.0;
/// How long a tab keeps the Web Lock after its send. Each tab reads its own copy of storage,
/// which learns of another tab's removals over IPC, on a channel with no order relative to the
/// lock's: a tab taking the lock the instant it is released could still see, and send again,
/// events the holder has just sent and removed. (Seen in the three-tab test: every event twice.)
const SETTLE_MS: u32 = 100;

// The Web Lock in JavaScript, as one call: `navigator.locks.request` with its options object and
// callback, and the hold after the job, would otherwise be half a dozen imports and a closure
// type of their own. (Called once `has_web_locks` found them.) A promise of whether the job
// ran: the callback gets the lock (or `null`, when `ifAvailable` found it taken), runs the job
// as a promise's executor and holds the lock until that promise settles and `SETTLE_MS` more
// have passed — in JavaScript, so that the lock is let go even if the tracker stops in between.
// A job that will not run is called with `null`, which frees it unrun (a Rust closure handed to
// JavaScript is freed by its one call).
#[wasm_bindgen(inline_js = "export function lock(name, ifAvailable, job, settle) {
  const skip = (v) => (job(true, null), v);
  try {
    return navigator.locks.request(name, { ifAvailable }, (held) => held ? new Promise((resolve) => job(true, resolve)).then(() => new Promise((ran) => setTimeout(ran, settle, true))) : skip(false));
  } catch (e) {
    return Promise.resolve(skip(false));
  }
}")]
extern "C" {
    fn lock(name: &str, if_available: bool, job: &JsValue, settle: u32) -> JsValue;
}

/// Work to do under the lease; it calls the continuation it is given when it is over, which
/// releases the lease.
pub type Job = Box<dyn FnOnce(Then)>;

/// What to do when the lease is held by someone else.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Give up at once: the holder sends this tab's stored events too (timers, background sends).
    IfFree,
    /// Queue behind the holder (even a send of this same tab), then run: `flush()` promises an
    /// answer about what is left, which a send still in flight cannot give. Only Web Locks can
    /// queue; the storage fallback gives up as with `IfFree`.
    Wait,
}

/// Runs `job` while holding the lease, then calls `then(true)`; `then(false)` if another holder
/// kept it (the job did not run).
pub fn run_exclusively(guard: &Function, tab: &str, turn: Turn, job: Job, then: Then) {
    if !has_web_locks() {
        return with_storage_lease(tab, job, then);
    }
    // A job whose continuation is lost still lets the lock go (see `promise`).
    let job = executor(
        true,
        Box::new(move |resolve| job(Box::new(move |_| resolve(true)))),
    );
    // The request's promise settles with what the callback's promise gave: whether the job ran.
    match lock(LOCK_NAME, turn == Turn::IfFree, &job, SETTLE_MS).dyn_into::<Promise>() {
        Ok(done) => settle(&done, guard, move |fulfilled, ran| {
            then(fulfilled && ran.as_bool() == Some(true))
        }),
        Err(_) => then(false),
    }
}

/// `navigator.locks.request` is there.
fn has_web_locks() -> bool {
    let Some(window) = super::page::window() else {
        return false;
    };
    let get = |o: &JsValue, k: &str| Reflect::get(o, &k.into()).ok();
    get(&window.into(), "navigator")
        .and_then(|n| get(&n, "locks"))
        .and_then(|l| get(&l, "request"))
        .is_some_and(|r| r.is_function())
}

/// The fallback: a `{tab, until}` record. Not atomic across tabs: each tab's storage is a copy
/// that learns of another tab's writes over IPC, after the fact, so tabs that look at the same
/// moment may all find it free and send the same events (e2e: three tabs without Web Locks sent
/// most events two or three times). The receiver deduplicates by id; every browser that has
/// shipped since 2022 has Web Locks.
fn with_storage_lease(tab: &str, job: Job, then: Then) {
    let now = js_sys::Date::now();
    if let Some(held) = storage::load(LEASE_KEY) {
        let other = held.get("tab").and_then(Value::as_str) != Some(tab);
        let until = match held.get("until") {
            Some(Value::Number(n)) => *n,
            _ => 0.0,
        };
        if other && until > now {
            return then(false);
        }
    }
    let record = Value::object([
        ("tab", Value::from(tab)),
        ("until", Value::Number(now + LEASE_MS)),
    ]);
    if !storage::save(LEASE_KEY, &record) {
        // No storage: nothing is shared between tabs, so this tab sends its own events.
        return job(Box::new(move |_| then(true)));
    }
    job(Box::new(move |_| {
        storage::remove(LEASE_KEY);
        then(true)
    }))
}
