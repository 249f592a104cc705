//! What the page tells the tracker: its window, the clock, random ids, the console, and the
//! facts events are sent with (Salla's store id, anonymous id and signed-in user, Salla's cookie
//! bar, the page's cookies). Every reader returns `None` rather than throw.

use super::value::from_js;
use crate::contact;
use crate::protocol;
use crate::value::Value;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

// The console, and the words (src/words.rs) a message's tokens stand for: `messages.js` beside
// this module, loaded the first time a message has tokens (or, with debug on, at start).
// Messages keep their order while it loads; a words file that cannot be had (blocked, 404) leaves
// `#` and each word's code, which still say which message it is. Once the words are here, the console
// is called at once, inside the wasm's call (a console that throws then reaches the guard).
#[wasm_bindgen(inline_js = "const P = '[salesmanago]';
let words, loading, waiting = [];
const render = (m) => m.replace(/\\x01(.)/gs, (_, k) => words[k] ?? '#' + k);
const print = (warn, m) => (warn ? console.warn : console.log)(P, m);
const done = (w) => {
  words = w;
  for (const [warn, m] of waiting.splice(0)) try { print(warn, render(m)); } catch (e) {}
};
export function preload() {
  if (loading) return;
  loading = 1;
  try {
    import(new URL('./messages.js', import.meta.url).href).then((m) => done(m.default || {}), () => done({}));
  } catch (e) {
    done({});
  }
}
export function say(warn, m) {
  if (words) return print(warn, render(m));
  if (!waiting.length && m.indexOf('\\x01') < 0) return print(warn, m);
  waiting.push([warn, m]);
  preload();
}")]
extern "C" {
    /// Loads the words now (debug on: the log will need them). (The flag makes wasm-bindgen
    /// route the call through its glue, like every other import: one import module.)
    pub fn preload(now: bool);
    #[wasm_bindgen(js_name = say)]
    fn say(warn: bool, message: &str);
}

#[wasm_bindgen]
extern "C" {
    /// The page's `window` (`None` outside a page).
    #[wasm_bindgen(thread_local_v2, js_name = window)]
    static WINDOW: Option<web_sys::Window>;
}

/// The page's window. Read from the `window` global directly: `web_sys::window()` looks for the
/// global object four ways and checks it with `instanceof`, seven imports for one value.
pub fn window() -> Option<web_sys::Window> {
    WINDOW.with(Clone::clone)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// A number in `[0, 1)`, for the backoff's jitter.
pub fn random() -> f64 {
    let b = random_bytes();
    f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])) / 4_294_967_296.0
}

/// 128 random bits (the browser's `crypto`, else `Math.random`), from a pool filled 256 bytes
/// at a time: a burst of events makes an id each, and the call out for each was 3 % of its time.
pub fn random_bytes() -> [u8; 16] {
    thread_local! {
        static POOL: RefCell<([u8; 256], usize)> = const { RefCell::new(([0; 256], 256)) };
    }
    POOL.with_borrow_mut(|(pool, used)| {
        if *used == pool.len() {
            fill_random(pool);
            *used = 0;
        }
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&pool[*used..*used + 16]);
        *used += 16;
        bytes
    })
}

/// A fresh random event id.
pub fn random_id() -> String {
    protocol::event_id(random_bytes())
}

/// Writes to the console, prefixed, in words; `warn` for what a merchant must act on.
pub fn console(warn: bool, message: &str) {
    say(warn, message);
}

/// Salla's store id (`Salla.config.get('store.id')`), the default `location`.
pub fn salla_store_id() -> Option<String> {
    match from_js(&salla(Fact::StoreId)) {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) if n.is_finite() => Some(protocol::millis_text(n as u64)),
        _ => None,
    }
}

/// Salla's record of the cookie bar (`Salla.storage.get('cookies-consent')`).
pub fn salla_consent() -> Option<String> {
    fact(Fact::Consent)
}

/// Whether the store may show Salla's cookie bar: `false` only when Salla's `store.features`
/// can be read and has no `website-cookies`. Where they cannot be read (Salla's SDK not started
/// yet, or not on the page), the tracker cannot tell, and writes and loads nothing until the
/// shopper's acceptance is known.
pub fn salla_cookie_bar() -> bool {
    match from_js(&salla(Fact::Features)) {
        Value::Array(features) => features
            .iter()
            .any(|f| f.as_str() == Some("website-cookies")),
        _ => true,
    }
}

/// Salla's anonymous id of this browser (`Salla.analytics.getAnonymousId()`): its analytics'
/// id, once that has started; `None` before, or on a store without it.
pub fn salla_anonymous_id() -> Option<String> {
    fact(Fact::AnonymousId)
}

/// The signed-in shopper of the page (`Salla.config.get('user')`); `None` for a guest.
pub fn salla_user() -> Option<contact::Shopper> {
    crate::pipeline::page_user(&from_js(&salla(Fact::User)))
}

/// The page's cookies (`document.cookie`), empty when unreadable.
pub fn cookies() -> String {
    fact(Fact::Cookies).unwrap_or_default()
}

/// The page is served over HTTPS (a cookie it writes may be `Secure`).
pub fn https() -> bool {
    fact(Fact::Protocol).is_some_and(|p| p == "https:")
}

/// What the page says of itself, one [`Fact`] at a time: `None` when it cannot be read or is
/// not text.
pub fn fact(which: Fact) -> Option<String> {
    read_fact(which as u8, true).as_string()
}

/// A fact as Salla's SDK gives it (`undefined` when it cannot be read).
fn salla(which: Fact) -> JsValue {
    read_fact(which as u8, true)
}

/// A fact [`fact`] reads. The order is the JavaScript `facts` array's, and Salla's come last,
/// from `StoreId` (index 6) on: `fact()` skips those on a page without Salla.
#[derive(Clone, Copy)]
pub enum Fact {
    /// `document.cookie`.
    Cookies,
    /// `location.protocol`: `https:`.
    Protocol,
    /// `location.hostname`.
    Hostname,
    /// `location.search`: `?sm_debug=1`.
    Search,
    /// `navigator.onLine`: `"1"` when online, `""` when not.
    Online,
    /// `document.visibilityState`: `hidden`, `visible`.
    Visibility,
    /// `Salla.config.get('store.id')`.
    StoreId,
    /// `Salla.storage.get('cookies-consent')`: Salla's record of its cookie bar.
    Consent,
    /// `Salla.config.get('store.features')`.
    Features,
    /// `Salla.analytics.getAnonymousId()`.
    AnonymousId,
    /// `Salla.config.get('user')`.
    User,
}

// The JavaScript's `n > 5` test is Salla's first fact.
const _: () = assert!(Fact::Visibility as u8 == 5 && Fact::StoreId as u8 == 6);

// The page's facts, Salla's SDK's included, through one function (and a cookie's writing, and
// randomness, through one each) rather than web-sys's imports for every object and property on
// the way (document, location, navigator, crypto …): every import is glue in every shopper's
// download. A fact that throws reads as `undefined`. Salla's are not tried on a page without
// Salla (yet): a ReferenceError, its stack walked through the wasm, cost ~0.1 ms a look, and the
// store id is looked for in every slice of a burst (`node bench/compare.mjs --event=viewed`).
#[wasm_bindgen(inline_js = "const facts = [
  () => document.cookie,
  () => location.protocol,
  () => location.hostname,
  () => location.search,
  () => (navigator.onLine ? '1' : ''),
  () => document.visibilityState,
  () => Salla.config.get('store.id'),
  () => Salla.storage.get('cookies-consent'),
  () => Salla.config.get('store.features'),
  () => Salla.analytics.getAnonymousId(),
  () => Salla.config.get('user'),
];
export function fact(n) {
  if (n > 5 && typeof Salla === 'undefined') return;
  try { return facts[n](); } catch (e) {}
}
export function setCookie(cookie) {
  try { document.cookie = cookie; } catch (e) {}
}
export function fill(bytes) {
  try { crypto.getRandomValues(bytes); } catch (e) {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.random() * 256;
  }
}")]
extern "C" {
    /// (The flag, ignored, makes wasm-bindgen route the call through its glue, like every other
    /// import: one import module.)
    #[wasm_bindgen(js_name = fact)]
    fn read_fact(n: u8, glue: bool) -> JsValue;
    /// Writes one cookie (`document.cookie = cookie`); failures are ignored (a sandboxed page).
    #[wasm_bindgen(js_name = setCookie)]
    pub fn set_cookie(cookie: &str);
    #[wasm_bindgen(js_name = fill)]
    fn fill_random(bytes: &mut [u8]);
}
