//! RAII handles for what the tracker registers with the browser, in the shape of gloo's
//! `EventListener` and `Timeout`: dropping the handle unregisters it and frees the closure, so
//! nothing leaks and nothing is forgotten on shutdown.
//!
//! Every callback goes through the page-side `guard` first: it catches anything thrown (a Rust
//! panic traps the wasm, which JavaScript sees as an exception) so that nothing escapes into the
//! host page, and turns the tracker quiet after the first failure.

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::EventTarget;

/// What to do when a piece of work that waits on the browser is over; told its outcome.
///
/// The shell waits on promises with continuations like this one rather than with Rust futures:
/// an executor (`wasm-bindgen-futures`) and the state machines of `async fn`s were ~2 KB gzip of
/// every shopper's download for three places that wait.
pub type Then = Box<dyn FnOnce(bool)>;

/// Calls `then` once `promise` settles: `(true, value)` when it fulfils, `(false, reason)` when
/// it rejects. Through the guard, like every callback. One closure serves both outcomes, and
/// frees itself after its one call.
pub fn settle(promise: &Promise, guard: &Function, then: impl FnOnce(bool, JsValue) + 'static) {
    settle_boxed(promise, guard, Box::new(then));
}

/// [`settle`] behind `dyn`: one copy of the closure's glue in the wasm, whoever waits.
fn settle_boxed(promise: &Promise, guard: &Function, then: Box<dyn FnOnce(bool, JsValue)>) {
    on_settled(promise, &guarded(guard, &Closure::once_into_js(then)), true);
}

/// A promise that `start` resolves by calling the function it is given (with the boolean to
/// resolve to). Never rejected, and never left pending: if that function is dropped uncalled
/// (the tracker was freed while the work waited on the browser), the promise resolves to
/// `otherwise`. A page's `await flush()` must not hang, nor a Web Lock be held for the page's
/// life, because a continuation was lost.
pub fn promise(otherwise: bool, start: impl FnOnce(Then) + 'static) -> Promise {
    deferred(&executor(otherwise, Box::new(start)), true)
}

/// The executor of such a promise, a [`once`] function: `new Promise((resolve) =>
/// executor(true, resolve))` (also in JavaScript: see `lease.rs`). Not through the guard: an
/// executor that never ran would leave its promise pending for ever; one that throws rejects
/// it, and the promise's reader handles that. Behind `dyn`: one copy in the wasm, whoever makes
/// a promise.
pub fn executor(otherwise: bool, start: Box<dyn FnOnce(Then)>) -> JsValue {
    once(Box::new(move |resolve: JsValue| {
        // Called with no function: the work will not run (see `lease.rs`); dropped unrun.
        if !resolve.is_function() {
            return;
        }
        let once = Resolve(resolve.unchecked_into(), otherwise);
        start(Box::new(move |value| once.with(value)));
    }))
}

/// A JavaScript function that calls `f` once, then frees it. JavaScript calls it as
/// `f(true, value)`: the same closure type as [`settle`]'s, so wasm-bindgen's glue for a
/// once-closure is in the wasm once (a second signature was ~150 B gzip).
pub fn once(f: Box<dyn FnOnce(JsValue)>) -> JsValue {
    Closure::once_into_js(
        Box::new(move |_: bool, value: JsValue| f(value)) as Box<dyn FnOnce(bool, JsValue)>
    )
}

// (Each function's flag, ignored, makes wasm-bindgen route the call through its glue, like every
// other import: one import module.)
#[wasm_bindgen(inline_js = "export function deferred(executor) {
  return new Promise((resolve) => executor(true, resolve));
}
export function settled(promise, f) {
  promise.then((value) => f(true, value), (reason) => f(false, reason));
}")]
extern "C" {
    /// `new Promise(executor)` (js-sys's takes a closure of two arguments: glue of its own).
    fn deferred(executor: &JsValue, glue: bool) -> Promise;
    /// `promise.then(…)`, calling `f(true, value)` or `f(false, reason)`.
    #[wasm_bindgen(js_name = settled)]
    fn on_settled(promise: &Promise, f: &Function, glue: bool);
}

/// A promise's `resolve`, called once, when dropped: with the value it was given, or else with
/// the fallback it holds.
struct Resolve(Function, bool);

impl Resolve {
    fn with(mut self, value: bool) {
        self.1 = value;
    }
}

impl Drop for Resolve {
    fn drop(&mut self) {
        let _ = self.0.call1(&JsValue::NULL, &self.1.into());
    }
}

/// Wraps a closure's function in the guard.
pub fn guarded(guard: &Function, f: &JsValue) -> Function {
    guard
        .call1(&JsValue::NULL, f)
        .ok()
        .and_then(|g| g.dyn_into::<Function>().ok())
        // Without a usable guard, the bare function still works; it only loses the net.
        .unwrap_or_else(|| f.clone().unchecked_into())
}

#[wasm_bindgen(inline_js = "export function listen(target, kinds, f, add) {
  for (const kind of kinds.split(',')) {
    if (!kind) continue;
    if (add) target.addEventListener(kind, f); else target.removeEventListener(kind, f);
  }
}")]
extern "C" {
    /// `addEventListener` (`removeEventListener` when `add` is false) for each of the
    /// comma-separated `kinds` (empty ones skipped: a list may end with a comma): one call out
    /// of the wasm for the whole event catalog, instead of forty at start-up.
    #[wasm_bindgen(catch)]
    fn listen(target: &EventTarget, kinds: &str, f: &Function, add: bool) -> Result<(), JsValue>;
}

/// One callback listening for one or more event types on a target, removed when dropped.
#[must_use = "the listener is removed when dropped"]
pub struct Listener {
    target: EventTarget,
    /// The types, each followed by a comma (or one type alone).
    kinds: &'static str,
    function: Function,
    _closure: Closure<dyn FnMut(JsValue, JsValue)>,
}

impl Listener {
    /// Listens for `kind` events on `target`.
    pub fn new(
        target: &EventTarget,
        kind: &'static str,
        guard: &Function,
        callback: impl FnMut(JsValue) + 'static,
    ) -> Listener {
        Listener::for_each(target, kind, guard, callback)
    }

    /// Listens for every type in `kinds` (each followed by a comma, as
    /// [`Kind::NAMES_LISTED`](crate::salla::Kind::NAMES_LISTED)) with one callback (it can tell
    /// them apart by the event's `type`): one closure instead of one per type keeps start-up
    /// short when the tracker listens for the whole event catalog. Should the browser refuse a
    /// type (it does not, on `window` and `document`), the others still listen, and dropping the
    /// listener removes what was added (removing one never added is harmless).
    pub fn for_each(
        target: &EventTarget,
        kinds: &'static str,
        guard: &Function,
        mut callback: impl FnMut(JsValue) + 'static,
    ) -> Listener {
        // Two arguments, the second unused: every long-lived closure the tracker hands the page
        // has this one type, and wasm-bindgen's glue for it is in the wasm once.
        let closure =
            Closure::<dyn FnMut(JsValue, JsValue)>::new(move |event, _: JsValue| callback(event));
        let function = guarded(guard, closure.as_ref());
        let _ = listen(target, kinds, &function, true);
        Listener {
            target: target.clone(),
            kinds,
            function,
            _closure: closure,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = listen(&self.target, self.kinds, &self.function, false);
    }
}

/// A pending `setTimeout`, cleared when dropped.
#[must_use = "the timer is cleared when dropped"]
pub struct Timeout {
    id: i32,
    _closure: Closure<dyn FnMut(bool, JsValue)>,
}

impl Timeout {
    /// Runs `callback` once after `ms` milliseconds. `None` if there is no window.
    pub fn new(ms: u32, guard: &Function, callback: impl FnOnce() + 'static) -> Option<Timeout> {
        // The once-closure type of `once` and `settle` (called with no arguments: `false` and
        // `undefined`), so that its glue is not in the wasm twice.
        let closure = Closure::once(
            Box::new(move |_: bool, _: JsValue| callback()) as Box<dyn FnOnce(bool, JsValue)>
        );
        let function = guarded(guard, closure.as_ref());
        let id = super::page::window()?
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                &function,
                i32::try_from(ms).unwrap_or(i32::MAX),
            )
            .ok()?;
        Some(Timeout {
            id,
            _closure: closure,
        })
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        if let Some(w) = super::page::window() {
            w.clear_timeout_with_handle(self.id);
        }
    }
}
