//! Moving protocol v1 bodies to the receiver: `fetch` with `keepalive` while the page lives,
//! `navigator.sendBeacon` when it is leaving. Bytes without a `Content-Type` (fetch) and a string
//! (`text/plain;charset=UTF-8`, the beacon) are both CORS simple requests: no preflight.
//!
//! What an answer means (retry, drop, done) is decided in [`crate::delivery`], not here.

use super::handle::{guarded, once, settle};
use crate::delivery::Answer;
use crate::{number, outbox};
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

// The request and the reading of its answer in JavaScript, as one call, rather than web-sys's
// dozen imports (RequestInit and its setters, Uint8Array, fetch, Response, its status, headers
// and JSON): every import is glue in every shopper's download. The body goes as the bytes copied
// out of wasm memory (a string would be decoded from UTF-8 here and encoded again by fetch; a
// body is up to 192 KB); the receiver needs no cookies of the shop's, and sending none keeps this
// a simple request. A page may have replaced `fetch`: only a real Response is an answer.
//
// The promise resolves to `<status>\n<Retry-After>\n`, as soon as the head is in (it rejects
// only when there is no answer): reading the body holds nothing up. What a 2xx's JSON says — its
// `contactId` (`docs/protocol.md` §2) — goes to `said` once the body is in: `said` is called
// exactly once, with `''` when there is nothing (no 2xx, a body that is empty, not JSON or
// unreadable, no answer at all). Without `said` (a request that only asks, §2.1), the promise
// waits for the body and its text ends with the `held` ids, one per line.
#[wasm_bindgen(inline_js = "export function send(url, body, keepalive, said) {
  const ask = !said;
  let p;
  try {
    p = fetch(url, { method: 'POST', body: body.slice(), mode: 'cors', credentials: 'omit', keepalive }).then((r) => {
      if (!(r instanceof Response)) throw 0;
      const head = r.status + '\\n' + (r.headers.get('Retry-After') ?? '') + '\\n';
      const read = (j) => (ask ? (Array.isArray(j?.held) ? j.held.filter((id) => typeof id === 'string').join('\\n') : '') : typeof j?.contactId === 'string' ? j.contactId : '');
      const text = r.ok ? r.json().then(read, () => '') : Promise.resolve('');
      if (ask) return text.then((t) => head + t);
      text.then((t) => said(true, t)).catch(() => {});
      return head;
    });
  } catch (e) {
    p = Promise.reject(e);
  }
  if (!ask) p.catch(() => said(true, ''));
  return p;
}
export function beacon(url, body) {
  try { return navigator.sendBeacon(url, body); } catch (e) { return false; }
}")]
extern "C" {
    fn send(url: &str, body: &[u8], keepalive: bool, said: &JsValue) -> Promise;
    /// Hands `body` to the browser to deliver even after the page is gone. `true` if it took it.
    pub fn beacon(url: &str, body: &str) -> bool;
}

/// An answer and the rest of its text (see `send`), or `Err(())` for none.
type Reply = Result<(Answer, String), ()>;

/// POSTs `body` to `url` and calls `then` with the answer's status and `Retry-After` (ms), and
/// the rest of its text (see `send`), or `Err(())` for a network failure (offline, refused,
/// CORS, blocked).
fn request(
    url: &str,
    body: &str,
    keepalive: bool,
    said: &JsValue,
    guard: &Function,
    then: Box<dyn FnOnce(Reply)>,
) {
    settle(
        &send(url, body.as_bytes(), keepalive, said),
        guard,
        move |answered, reply| {
            let reply = reply.as_string().filter(|_| answered).unwrap_or_default();
            let mut parts = reply.splitn(3, '\n');
            let (Some(status), Some(retry), Some(rest)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return then(Err(()));
            };
            let answer = Answer {
                status: number::parse(status).unwrap_or(0.0) as u16,
                retry_after_ms: outbox::retry_after_ms(Some(retry)),
            };
            then(Ok((answer, rest.to_owned())));
        },
    );
}

/// POSTs `body` to `url`, then calls `then` with the answer: `Err(())` for a network failure.
/// After a 2xx whose body is JSON naming a `contactId` (`docs/protocol.md` §2), calls `named`
/// with it, once the body has arrived: `then` does not wait for it.
pub fn post(
    url: &str,
    body: &str,
    keepalive: bool,
    guard: &Function,
    then: impl FnOnce(Result<Answer, ()>) + 'static,
    named: impl FnOnce(String) + 'static,
) {
    let said = once(Box::new(move |id: JsValue| {
        if let Some(id) = id.as_string().filter(|id| !id.is_empty()) {
            named(id);
        }
    }));
    request(
        url,
        body,
        keepalive,
        &guarded(guard, &said),
        guard,
        Box::new(move |answer| then(answer.map(|(answer, _)| answer))),
    );
}

/// POSTs a request that only asks (`docs/protocol.md` §2.1), then calls `then` exactly once
/// with the ids the receiver holds: none after anything but a 2xx with `{"held": [ids]}`.
pub fn ask(url: &str, body: &str, guard: &Function, then: impl FnOnce(Vec<String>) + 'static) {
    request(
        url,
        body,
        false,
        &JsValue::UNDEFINED,
        guard,
        Box::new(move |answer| {
            let held = match answer {
                // `send` reads `held` only from a 2xx.
                Ok((_, held)) if !held.is_empty() => super::owned_lines(&held),
                _ => Vec::new(),
            };
            then(held);
        }),
    );
}
