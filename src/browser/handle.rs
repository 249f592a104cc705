//! RAII handles for what the tracker registers with the browser, in the shape of gloo's
//! `EventListener` and `Timeout`: dropping the handle unregisters it and frees the closure, so
//! nothing leaks and nothing is forgotten on shutdown.
//!
//! Every callback goes through the page-side `guard` first: it catches anything thrown (a Rust
//! panic traps the wasm, which JavaScript sees as an exception) so that nothing escapes into the
//! host page, and turns the tracker quiet after the first failure.

use js_sys::{Function, Promise};
use std::future::Future;
use std::pin::Pin;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::EventTarget;

/// A promise for `future`, never rejected. One instance for the whole shell:
/// `future_to_promise` is generic, and each future type would compile its own copy.
pub fn promise(future: Pin<Box<dyn Future<Output = JsValue>>>) -> Promise {
    wasm_bindgen_futures::future_to_promise(async move { Ok(future.await) })
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

/// One callback listening for one or more event types on a target, removed when dropped.
pub struct Listener {
    target: EventTarget,
    kinds: Vec<&'static str>,
    function: Function,
    _closure: Closure<dyn FnMut(JsValue)>,
}

impl Listener {
    /// Listens for `kind` events on `target`. `None` if the browser refused the listener.
    pub fn new(
        target: &EventTarget,
        kind: &'static str,
        guard: &Function,
        callback: impl FnMut(JsValue) + 'static,
    ) -> Option<Listener> {
        Listener::for_each(target, &[kind], guard, callback)
    }

    /// Listens for every type in `kinds` with one callback (it can tell them apart by the
    /// event's `type`): one closure instead of one per type keeps start-up short when the
    /// tracker listens for the whole event catalog. `None` if the browser refused any of them.
    pub fn for_each(
        target: &EventTarget,
        kinds: &[&'static str],
        guard: &Function,
        callback: impl FnMut(JsValue) + 'static,
    ) -> Option<Listener> {
        let closure = Closure::<dyn FnMut(JsValue)>::new(callback);
        let function = guarded(guard, closure.as_ref());
        // Built first so that, if the browser refuses a type half-way, dropping it removes the
        // ones already added.
        let mut listener = Listener {
            target: target.clone(),
            kinds: Vec::with_capacity(kinds.len()),
            function,
            _closure: closure,
        };
        for kind in kinds {
            listener
                .target
                .add_event_listener_with_callback(kind, &listener.function)
                .ok()?;
            listener.kinds.push(kind);
        }
        Some(listener)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for kind in &self.kinds {
            let _ = self
                .target
                .remove_event_listener_with_callback(kind, &self.function);
        }
    }
}

/// A pending `setTimeout`, cleared when dropped.
pub struct Timeout {
    id: i32,
    _closure: Closure<dyn FnMut()>,
}

impl Timeout {
    /// Runs `callback` once after `ms` milliseconds. `None` if there is no window.
    pub fn new(ms: u32, guard: &Function, callback: impl FnOnce() + 'static) -> Option<Timeout> {
        let closure = Closure::once(callback);
        let function = guarded(guard, closure.as_ref());
        let id = super::window()?
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
        if let Some(w) = super::window() {
            w.clear_timeout_with_handle(self.id);
        }
    }
}
