//! Where events come from (`docs/mapping.md` §1): Salla's tracker hook, with Twilight's event
//! bus for the events the store's allow-list withholds from it, DOM `CustomEvent`s on `window`
//! named after catalog events, and the manual API (in `api`). Each source only turns what it
//! receives into `(name, payload)` and hands it to the inbox; deduplication by `event_id`
//! happens once, in the core, and which bus events to take is the core's too (`salla::bus`).

use super::handle::{guarded, Listener, Timeout};
use super::inbox::Command;
use super::value::{from_js, tape_of};
use super::{page, Shared, Timer};
use crate::salla::bus::{self, Taken};
use crate::salla::Kind;
use crate::tape::Tape;
use crate::words;
use js_sys::{Function, Reflect};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;

/// The name we register under; Salla refuses a second tracker of the same name.
const TRACKER_NAME: &str = "salesmanago";
/// Waits between looks for a Salla SDK that loads after us: a few, spread over half a minute,
/// then only the SDK's own events wake us (no busy loop).
const SALLA_LOOKS_MS: [u32; 6] = [50, 200, 1_000, 3_000, 10_000, 20_000];
/// Window events Twilight dispatches as it comes up.
const SALLA_WINDOW_EVENTS: &str = "salla::created,twilight::initiated,load,";

fn get(target: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(target, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

/// Hands an event to the inbox: the payload is read at once (the page may reuse its object); it
/// is mapped in a later slice.
fn receive(shared: &Weak<Shared>, name: String, payload: &JsValue) {
    if let Some(s) = shared.upgrade() {
        s.post_later(Command::Track(name, tape_of(payload)));
    }
}

#[wasm_bindgen(inline_js = "export function onBus(names, f) {
  var S = window.Salla, n = 0, past = [];
  names = names.split(',');
  function call(name, a, b) {
    var c = {}, g = function (k) { return S.config.get(k); };
    try {
      c.allow = g('jitsu.events');
      c.page = g('page.slug');
      c.user_type = g('user.type');
      c.wishlist_id = g('store.id') + '_' + g('user.id');
      c.currency = S.config.currency().code;
    } catch (e) {}
    try { c.source = S.cart.api.addToCartSource; } catch (e) {}
    try { c.user = JSON.parse(localStorage.getItem('user')); } catch (e) {}
    c[0] = a;
    c[1] = b;
    f(name, c);
  }
  try {
    past = window.dataLayer.filter(function (e) { return e && names.indexOf(e.event) >= 0; });
  } catch (e) {}
  names.forEach(function (name, i) {
    if (names.indexOf(name) < i) return;
    try {
      S.event.on(name, function (a, b) { call(name, a, b); });
      n++;
    } catch (e) {}
  });
  if (n) past.forEach(function (e) { call(e.event, e); });
  return n;
}
export function register(name, track, page, ready) {
  var S = window.Salla, a = S && S.analytics, t = { name: name, track: track, page: page };
  if (!a || typeof a.registerTracker !== 'function') return 0;
  function go() {
    try { a.registerTracker(t); } catch (e) { return 0; }
    ready();
    return 1;
  }
  try {
    if (typeof S.onReady !== 'function') return go();
    S.onReady(go);
    return 1;
  } catch (e) {
    return 0;
  }
}")]
extern "C" {
    /// Listens on Twilight's event bus (`Salla.event.on`) once for each of the comma-separated
    /// `names`, calling `f(name, input)` with the event's first two arguments under `0` and `1`
    /// and the page's context as `salla::bus` documents it, read at that moment. What the bus
    /// said before (Twilight writes every emit into `window.dataLayer`) is replayed first, as
    /// Salla replays its history to a late tracker. Returns how many names it listens for;
    /// never throws.
    #[wasm_bindgen(js_name = onBus)]
    fn on_bus(names: &str, f: &Function) -> u32;
    /// Registers `{name, track, page}` with `window.Salla.analytics.registerTracker` (inside
    /// `Salla.onReady` when Salla has it), then calls `ready`. `0` when Salla's analytics is not
    /// there, or refused (then `ready` is not called).
    fn register(name: &str, track: &Function, page: &Function, ready: &Function) -> u32;
}

/// Our registration with Salla's analytics engine, and our listener on Twilight's event bus.
/// Salla has no way to unregister, so the closures live as long as the tracker; after
/// `shutdown` they ignore what they receive.
#[must_use = "Salla calls these closures for as long as the page lives"]
pub struct SallaHook {
    _track: Closure<dyn FnMut(JsValue, JsValue)>,
    _page: Closure<dyn FnMut(JsValue, JsValue)>,
    _bus: Closure<dyn FnMut(JsValue, JsValue)>,
    _ready: Closure<dyn FnMut(bool, JsValue)>,
}

/// One event off Twilight's bus: taken (as the catalog event the core reads it into) only when
/// the store's allow-list withholds it from Salla's engine.
fn from_bus(shared: &Rc<Shared>, name: &str, input: &JsValue) {
    match bus::take(name, &from_js(input)) {
        Taken::Event(kind, payload) => {
            shared.log(&[name, " → ", kind.name(), words::FROM_THE_BUS]);
            shared.post_later(Command::Track(kind.name().to_owned(), Tape::from(&payload)));
        }
        // Salla's engine hands it over itself, or reports nothing for it here either.
        Taken::Delivered | Taken::Unrouted => {}
    }
}

/// Listens on Twilight's event bus, once the tracker is registered (Salla has then replayed
/// its history to us; the bus's own history follows).
fn listen_to_bus(shared: &Shared, f: &Function) {
    if on_bus(&bus::names(), f) == 0 && shared.debug {
        page::console(true, words::NO_BUS);
    }
}

/// Registers with `window.Salla.analytics` if it is there (inside `Salla.onReady` when Salla
/// has it). Salla replays its history to a new tracker, so nothing before this is lost.
pub fn register_with_salla(shared: &Rc<Shared>) -> Option<SallaHook> {
    let weak = Rc::downgrade(shared);
    let track = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |name: JsValue, payload| {
        receive(&weak, name.as_string().unwrap_or_default(), &payload)
    });
    let weak = Rc::downgrade(shared);
    // Every closure here has one of the two types the rest of the tracker uses (see
    // `handle`): wasm-bindgen's glue is per type.
    let page = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |payload: JsValue, _: JsValue| {
        receive(&weak, Kind::Page.name().to_owned(), &payload)
    });
    let weak = Rc::downgrade(shared);
    let bus = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |name: JsValue, input| {
        if let (Some(s), Some(name)) = (weak.upgrade(), name.as_string()) {
            if !s.stopped() {
                from_bus(&s, &name, &input);
            }
        }
    });
    let bus_fn = guarded(&shared.guard, bus.as_ref());
    let weak = Rc::downgrade(shared);
    // Registered: listen on the bus too.
    let ready = Closure::once(Box::new(move |_: bool, _: JsValue| {
        if let Some(s) = weak.upgrade() {
            listen_to_bus(&s, &bus_fn);
        }
    }) as Box<dyn FnOnce(bool, JsValue)>);
    let guard = &shared.guard;
    let registered = register(
        TRACKER_NAME,
        &guarded(guard, track.as_ref()),
        &guarded(guard, page.as_ref()),
        &guarded(guard, ready.as_ref()),
    );
    if registered == 0 {
        return None;
    }
    shared.log(&[words::REGISTERED]);
    Some(SallaHook {
        _track: track,
        _page: page,
        _bus: bus,
        _ready: ready,
    })
}

/// Looks for Salla and registers; `true` once registered (now or before), or once the tracker
/// stopped. Registering replays Salla's history into the inbox.
pub fn connect_salla(shared: &Rc<Shared>) -> bool {
    if shared.salla.get().is_some() || shared.stopped() {
        return true;
    }
    let Some(hook) = register_with_salla(shared) else {
        return false;
    };
    let _ = shared.salla.set(hook);
    shared.handles(|h| h.salla_watch = None);
    shared.set_timer(Timer::SallaLook, None);
    true
}

/// Watches for a Salla SDK that arrives after the tracker: Twilight's own window events, and a
/// few spaced looks.
pub fn watch_for_salla(shared: &Rc<Shared>) {
    let Some(window) = super::page::window() else {
        return;
    };
    let weak = Rc::downgrade(shared);
    let watch = Listener::for_each(&window, SALLA_WINDOW_EVENTS, &shared.guard, move |_| {
        if let Some(s) = weak.upgrade() {
            connect_salla(&s);
        }
    });
    shared.handles(|h| h.salla_watch = Some(watch));
    look_later(Rc::downgrade(shared), 0);
}

/// Schedules look number `n` for Salla (none after the last).
fn look_later(weak: Weak<Shared>, n: usize) {
    let (Some(&ms), Some(shared)) = (SALLA_LOOKS_MS.get(n), weak.upgrade()) else {
        return;
    };
    let look = Timeout::new(ms, &shared.guard, move || {
        if let Some(s) = weak.upgrade() {
            if !connect_salla(&s) {
                look_later(weak, n + 1);
            }
        }
    });
    shared.set_timer(Timer::SallaLook, look);
}

/// One listener for every catalog event name (both wishlist spellings): `window.dispatchEvent(new
/// CustomEvent("Product Viewed", { detail: payload }))`.
pub fn listen_to_dom_events(shared: &Rc<Shared>, window: &web_sys::Window) -> Listener {
    let weak = Rc::downgrade(shared);
    Listener::for_each(window, Kind::NAMES_LISTED, &shared.guard, move |event| {
        let name = get(&event, "type").and_then(|t| t.as_string());
        let detail = Reflect::get(&event, &JsValue::from_str("detail")).unwrap_or(JsValue::NULL);
        if let Some(name) = name {
            receive(&weak, name, &detail);
        }
    })
}
