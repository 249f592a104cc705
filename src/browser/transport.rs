//! Moving protocol v1 bodies to the receiver: `fetch` with `keepalive` while the page lives,
//! `navigator.sendBeacon` when it is leaving. A string body makes the request
//! `text/plain;charset=UTF-8`, a CORS simple request: no preflight.
//!
//! What an answer means (retry, drop, done) is decided in `outbox`, not here.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestCredentials, RequestInit, RequestMode, Response};

/// The receiver's answer: status and `Retry-After` (readable when the receiver exposes it).
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if readable.
    pub retry_after: Option<String>,
}

/// POSTs `body` to `url`. `Err(())` for a network failure (offline, refused, CORS, blocked).
pub async fn post(url: &str, body: &str, keepalive: bool) -> Result<Answer, ()> {
    let window = super::window().ok_or(())?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&body.into());
    init.set_mode(RequestMode::Cors);
    // The receiver needs no cookies of the shop's; sending none keeps this a simple request.
    init.set_credentials(RequestCredentials::Omit);
    // web-sys has no setter for `keepalive`; RequestInit is a plain dictionary object.
    let _ = js_sys::Reflect::set(&init, &"keepalive".into(), &keepalive.into());
    let response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|_| ())?;
    let response: Response = response.dyn_into().map_err(|_| ())?;
    Ok(Answer {
        status: response.status(),
        retry_after: response.headers().get("Retry-After").ok().flatten(),
    })
}

/// Hands `body` to the browser to deliver even after the page is gone. `true` if it took it.
pub fn beacon(url: &str, body: &str) -> bool {
    super::window()
        .and_then(|w| w.navigator().send_beacon_with_opt_str(url, Some(body)).ok())
        .unwrap_or(false)
}
