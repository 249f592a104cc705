//! One sender at a time across the store's tabs. Every tab writes its events to the shared
//! outbox in storage; only the tab holding the lease sends, so no event goes out twice because
//! two tabs picked it up together.
//!
//! The lease is a Web Lock (`navigator.locks`, released by the browser even if the tab dies), or,
//! where Web Locks are missing, a record in storage that expires.

use super::handle::{guarded, promise, settle, Then};
use super::persist as storage;
use crate::value::Value;
use js_sys::{Function, Object, Promise, Reflect};
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

#[wasm_bindgen(inline_js = "export function later(done, ms) {
  return done.then((v) => new Promise((resolve) => setTimeout(() => resolve(v), ms)));
}")]
extern "C" {
    /// `done`, resolved `ms` later. In JavaScript, so that the lock is let go even if the
    /// tracker stops in between.
    fn later(done: &Promise, ms: u32) -> Promise;
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
    match web_locks() {
        Some((locks, request)) => with_web_lock(guard, &locks, &request, turn, job, then),
        None => with_storage_lease(tab, job, then),
    }
}

fn web_locks() -> Option<(JsValue, Function)> {
    let window: JsValue = super::page::window()?.into();
    let navigator = Reflect::get(&window, &"navigator".into()).ok()?;
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    let request = Reflect::get(&locks, &"request".into()).ok()?;
    Some((locks, request.dyn_into().ok()?))
}

fn with_web_lock(
    guard: &Function,
    locks: &JsValue,
    request: &Function,
    turn: Turn,
    job: Job,
    then: Then,
) {
    let options = Object::new();
    let if_free = turn == Turn::IfFree;
    let _ = Reflect::set(&options, &"ifAvailable".into(), &if_free.into());
    // Called once by the browser: with the lock (hold it until the returned promise settles),
    // or with null when `ifAvailable` found it taken.
    let callback = Closure::once_into_js(move |lock: JsValue| -> Promise {
        if lock.is_null() {
            return Promise::resolve(&JsValue::FALSE);
        }
        // A job whose continuation is lost still lets the lock go (see `promise`).
        let done = promise(true, |resolve| job(Box::new(move |_| resolve(true))));
        later(&done, SETTLE_MS)
    });
    let callback = guarded(guard, &callback);
    // The request's promise settles with what the callback's promise gave: whether the job ran.
    match request.call3(locks, &LOCK_NAME.into(), &options, &callback) {
        Ok(done) => match done.dyn_into::<Promise>() {
            Ok(done) => settle(&done, guard, move |fulfilled, ran| {
                then(fulfilled && ran.as_bool() == Some(true))
            }),
            Err(_) => then(false),
        },
        Err(_) => then(false),
    }
}

/// The fallback: a `{tab, until}` record. Not atomic across tabs, but it narrows the window to
/// the microseconds between read and write, and a receiver deduplicates by id anyway.
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
