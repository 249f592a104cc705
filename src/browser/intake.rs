//! Where events come from (`spec/mapping.md` §1): Salla's tracker hook, DOM `CustomEvent`s on
//! `window` named after catalog events, and the manual API (in `mod.rs`). Each source only turns
//! what it receives into `(name, payload)` and hands it to [`Shared::receive`]; deduplication by
//! `event_id` happens once, in the core.

use super::handle::{guarded, Listener, Timeout};
use super::Shared;
use crate::salla::Kind;
use js_sys::{Function, Object, Reflect};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The name we register under; Salla refuses a second tracker of the same name.
const TRACKER_NAME: &str = "salesmanago";
/// Waits between looks for a Salla SDK that loads after us: a few, spread over half a minute,
/// then only the SDK's own events wake us (no busy loop).
const SALLA_LOOKS_MS: [u32; 6] = [50, 200, 1_000, 3_000, 10_000, 20_000];
/// Window events Twilight dispatches as it comes up.
const SALLA_WINDOW_EVENTS: [&str; 3] = ["salla::created", "twilight::initiated", "load"];

fn get(target: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(target, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn function(target: &JsValue, key: &str) -> Option<Function> {
    get(target, key)?.dyn_into::<Function>().ok()
}

/// Our registration with Salla's analytics engine. Salla has no way to unregister, so the
/// closures live as long as the tracker; after `shutdown` they ignore what they receive.
pub struct SallaHook {
    _track: Closure<dyn FnMut(JsValue, JsValue)>,
    _page: Closure<dyn FnMut(JsValue)>,
    _ready: Option<Closure<dyn FnMut()>>,
}

/// Registers with `window.Salla.analytics` if it is there (inside `Salla.onReady` when Salla
/// has it). Salla replays its history to a new tracker, so nothing before this is lost.
pub fn register_with_salla(shared: &Rc<Shared>) -> Option<SallaHook> {
    let window: JsValue = super::window()?.into();
    let salla = get(&window, "Salla")?;
    let analytics = get(&salla, "analytics")?;
    let register = function(&analytics, "registerTracker")?;

    let weak = Rc::downgrade(shared);
    let track = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |name: JsValue, payload| {
        if let Some(s) = weak.upgrade() {
            s.receive(name.as_string().unwrap_or_default(), &payload);
        }
    });
    let weak = Rc::downgrade(shared);
    let page = Closure::<dyn FnMut(JsValue)>::new(move |payload: JsValue| {
        if let Some(s) = weak.upgrade() {
            s.receive(Kind::Page.name().to_owned(), &payload);
        }
    });
    let tracker = Object::new();
    let set = |k: &str, v: &JsValue| Reflect::set(&tracker, &JsValue::from_str(k), v).is_ok();
    let ok = set("name", &JsValue::from_str(TRACKER_NAME))
        && set("track", &guarded(&shared.guard, track.as_ref()))
        && set("page", &guarded(&shared.guard, page.as_ref()));
    if !ok {
        return None;
    }

    let ready = match function(&salla, "onReady") {
        Some(on_ready) => {
            let ready = Closure::once(move || {
                let _ = register.call1(&analytics, &tracker);
            });
            on_ready
                .call1(&salla, &guarded(&shared.guard, ready.as_ref()))
                .ok()?;
            Some(ready)
        }
        None => {
            register.call1(&analytics, &tracker).ok()?;
            None
        }
    };
    shared.log("registered with Salla's analytics");
    Some(SallaHook {
        _track: track,
        _page: page,
        _ready: ready,
    })
}

/// Watches for a Salla SDK that arrives after the tracker: Twilight's own window events, and a
/// few spaced looks. Returns the handles; dropping them stops the watch.
pub fn watch_for_salla(shared: &Rc<Shared>) -> (Vec<Listener>, Option<Timeout>) {
    let Some(window) = super::window() else {
        return (Vec::new(), None);
    };
    let weak = Rc::downgrade(shared);
    let listeners = Listener::for_each(&window, &SALLA_WINDOW_EVENTS, &shared.guard, move |_| {
        if let Some(s) = weak.upgrade() {
            s.connect_salla();
        }
    })
    .into_iter()
    .collect();
    (listeners, look_later(Rc::downgrade(shared), 0))
}

/// Schedules look number `n` for Salla.
pub fn look_later(weak: Weak<Shared>, n: usize) -> Option<Timeout> {
    let ms = *SALLA_LOOKS_MS.get(n)?;
    let guard = weak.upgrade()?.guard.clone();
    Timeout::new(ms, &guard, move || {
        if let Some(s) = weak.upgrade() {
            if !s.connect_salla() {
                s.set_salla_look(look_later(weak, n + 1));
            }
        }
    })
}

/// One listener for every catalog event name (both wishlist spellings): `window.dispatchEvent(new
/// CustomEvent("Product Viewed", { detail: payload }))`.
pub fn listen_to_dom_events(shared: &Rc<Shared>) -> Option<Listener> {
    let window = super::window()?;
    let weak = Rc::downgrade(shared);
    Listener::for_each(&window, Kind::NAMES, &shared.guard, move |event| {
        let Some(s) = weak.upgrade() else {
            return;
        };
        let name = get(&event, "type").and_then(|t| t.as_string());
        let detail = Reflect::get(&event, &JsValue::from_str("detail")).unwrap_or(JsValue::NULL);
        if let Some(name) = name {
            s.receive(name, &detail);
        }
    })
}
