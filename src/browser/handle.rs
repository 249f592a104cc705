//! RAII handles for what the tracker registers with the browser, in the shape of gloo's
//! `EventListener` and `Timeout`: dropping the handle unregisters it and frees the closure, so
//! nothing leaks and nothing is forgotten on shutdown.
//!
//! Every callback goes through the page-side `guard` first: it catches anything thrown (a Rust
//! panic traps the wasm, which JavaScript sees as an exception) so that nothing escapes into the
//! host page, and turns the tracker quiet after the first failure.

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::EventTarget;

/// Wraps a closure's function in the guard.
pub fn guarded(guard: &Function, f: &JsValue) -> Function {
    guard
        .call1(&JsValue::NULL, f)
        .ok()
        .and_then(|g| g.dyn_into::<Function>().ok())
        // Without a usable guard, the bare function still works; it only loses the net.
        .unwrap_or_else(|| f.clone().unchecked_into())
}

/// An event listener, removed when dropped.
pub struct Listener {
    target: EventTarget,
    kind: String,
    function: Function,
    _closure: Closure<dyn FnMut(JsValue)>,
}

impl Listener {
    /// Listens for `kind` events on `target`. `None` if the browser refused the listener.
    pub fn new(
        target: &EventTarget,
        kind: &str,
        guard: &Function,
        callback: impl FnMut(JsValue) + 'static,
    ) -> Option<Listener> {
        let closure = Closure::<dyn FnMut(JsValue)>::new(callback);
        let function = guarded(guard, closure.as_ref());
        target
            .add_event_listener_with_callback(kind, &function)
            .ok()?;
        Some(Listener {
            target: target.clone(),
            kind: kind.to_owned(),
            function,
            _closure: closure,
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(&self.kind, &self.function);
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
        let id = web_sys::window()?
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
        if let Some(w) = web_sys::window() {
            w.clear_timeout_with_handle(self.id);
        }
    }
}
