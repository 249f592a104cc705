//! Moving protocol v1 bodies to the receiver: `fetch` with `keepalive` while the page lives,
//! `navigator.sendBeacon` when it is leaving. Bytes without a `Content-Type` (fetch) and a string
//! (`text/plain;charset=UTF-8`, the beacon) are both CORS simple requests: no preflight.
//!
//! What an answer means (retry, drop, done) is decided in [`crate::delivery`], not here.

use super::handle::settle;
use crate::delivery::Answer;
use crate::outbox;
use js_sys::Function;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{RequestCredentials, RequestInit, RequestMode, Response};

/// POSTs `body` to `url`, then calls `then` with the answer: `Err(())` for a network failure
/// (offline, refused, CORS, blocked). After a 2xx whose body is JSON naming a `contactId`
/// (`docs/protocol.md` §2), calls `named` with it, once the body has arrived: `then` does not
/// wait for it, and a body that is empty, not JSON or unreadable only means no call.
pub fn post(
    url: &str,
    body: &str,
    keepalive: bool,
    guard: &Function,
    then: impl FnOnce(Result<Answer, ()>) + 'static,
    named: impl FnOnce(String) + 'static,
) {
    let Some(request) = fetch(url, body, keepalive) else {
        return then(Err(()));
    };
    let guard = guard.clone();
    settle(&request, &guard.clone(), move |fulfilled, response| {
        // A page may have replaced `fetch`: take only a real Response as an answer.
        let response = match response.dyn_into::<Response>() {
            Ok(response) if fulfilled => response,
            _ => return then(Err(())),
        };
        let status = response.status();
        then(Ok(Answer {
            status,
            retry_after_ms: outbox::retry_after_ms(
                response
                    .headers()
                    .get("Retry-After")
                    .ok()
                    .flatten()
                    .as_deref(),
            ),
        }));
        if !(200..300).contains(&status) {
            return;
        }
        if let Ok(json) = response.json() {
            settle(&json, &guard, move |parsed, value| {
                let id = js_sys::Reflect::get(&value, &"contactId".into()).ok();
                if let Some(id) = id.and_then(|id| id.as_string()).filter(|_| parsed) {
                    named(id);
                }
            });
        }
    });
}

/// POSTs a request that only asks (`docs/protocol.md` §2.1), then calls `then` exactly once:
/// with the answer's JSON after a 2xx, `undefined` after anything else (no answer, an error
/// status, a body that is not JSON).
pub fn ask(url: &str, body: &str, guard: &Function, then: impl FnOnce(JsValue) + 'static) {
    let Some(request) = fetch(url, body, false) else {
        return then(JsValue::UNDEFINED);
    };
    let guard = guard.clone();
    settle(&request, &guard.clone(), move |fulfilled, response| {
        let json = match response.dyn_into::<Response>() {
            Ok(r) if fulfilled && (200..300).contains(&r.status()) => r.json().ok(),
            _ => None,
        };
        match json {
            Some(json) => settle(&json, &guard, move |parsed, value| {
                then(if parsed { value } else { JsValue::UNDEFINED })
            }),
            None => then(JsValue::UNDEFINED),
        }
    });
}

/// The `fetch` of a body: its bytes, CORS, no credentials. `None` without a window.
fn fetch(url: &str, body: &str, keepalive: bool) -> Option<js_sys::Promise> {
    let window = super::page::window()?;
    let init = RequestInit::new();
    init.set_method("POST");
    // The bytes, copied out of wasm memory as they are: a string would be decoded from UTF-8
    // here and encoded again by fetch (a request's body is up to 60 KB).
    init.set_body(&js_sys::Uint8Array::from(body.as_bytes()));
    init.set_mode(RequestMode::Cors);
    // The receiver needs no cookies of the shop's; sending none keeps this a simple request.
    init.set_credentials(RequestCredentials::Omit);
    // web-sys has no setter for `keepalive`; RequestInit is a plain dictionary object.
    let _ = js_sys::Reflect::set(&init, &"keepalive".into(), &keepalive.into());
    Some(window.fetch_with_str_and_init(url, &init))
}

/// Hands `body` to the browser to deliver even after the page is gone. `true` if it took it.
pub fn beacon(url: &str, body: &str) -> bool {
    super::page::window()
        .and_then(|w| w.navigator().send_beacon_with_opt_str(url, Some(body)).ok())
        .unwrap_or(false)
}
