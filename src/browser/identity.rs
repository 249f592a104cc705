//! Who a batch is from and about, as the page says it when the batch leaves (this browser's
//! anonymous id, the store, the shopper), and what the shopper's consent lets the tracker do
//! besides sending: keep SALESmanago's contact id in the `smclient` cookie, and load
//! SALESmanago's monitoring script (`docs/mapping.md` §4). The rules are the core's
//! ([`crate::contact`]); this module reads the page and carries them out.

use super::{page, persist, Shared, State};
use crate::contact::{self, Consent, ConsentFacts};
use crate::protocol::{self, Head};
use crate::words;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = "export function sm(origin, id) {
  var w = window, d = document;
  if (w._smid || d.querySelector('script[src*=\"/static/sm.js\"]')) return false;
  w._smid = id;
  w.SalesmanagoObject = 'sm';
  w.sm = w.sm || function () { (w.sm.q = w.sm.q || []).push(arguments); };
  var s = d.createElement('script');
  s.async = true;
  s.src = origin + '/static/sm.js';
  s.onerror = function () {};
  d.head.appendChild(s);
  return true;
}")]
extern "C" {
    /// Sets `window._smid` and SALESmanago's `sm` command queue as its own snippet does, and adds
    /// its monitoring script, unless the page has either already (the merchant installed it):
    /// `false` then. A script that fails to load (blocked,
    /// 404) fires only its own, swallowed, `error` event.
    #[wasm_bindgen(catch)]
    fn sm(origin: &str, client_id: &str) -> Result<bool, JsValue>;
}

/// The shopper's consent now; `cookies` is `document.cookie`.
fn consent(st: &State, cookies: &str) -> Consent {
    let recorded = page::salla_consent();
    ConsentFacts {
        page: st.consent,
        bar: page::salla_cookie_bar(),
        recorded: recorded.as_deref(),
        cookies,
    }
    .consent()
}

/// This browser's anonymous id: the kept one, else Salla's, else a fresh one, kept for the pages
/// after this one (for this page only when storage refuses it).
fn anonymous_id(st: &mut State) -> String {
    let kept = st.anonymous_id.take().or_else(persist::anonymous_id);
    let (id, keep) = contact::anonymous_id(
        page::salla_anonymous_id().as_deref(),
        kept.as_deref(),
        || contact::new_anonymous_id(page::random_bytes()),
    );
    if keep {
        persist::save_anonymous_id(&id);
    }
    st.anonymous_id = Some(id.clone());
    id
}

/// The protocol body for `events` sent at `now`, from this browser, about the shopper as the
/// page says now (a batch restored from storage, or sent by `sendBeacon`, too).
pub fn body(shared: &Shared, st: &mut State, now: u64, events: &[String]) -> String {
    let cookies = page::cookies();
    let consent = consent(st, &cookies);
    monitor(shared, st, consent);
    // A shopper who refused is not followed across pages: no id, so that the receiver never
    // ties what was sent meanwhile to a contact named later.
    let anonymous_id = consent.allows_personal_data().then(|| anonymous_id(st));
    st.look_for_store_id();
    let config = st.pipeline.config();
    let user = if config.send_email {
        page::salla_user()
    } else {
        None
    };
    let smclient = contact::cookie_value(&cookies, "smclient");
    if smclient.is_some() && st.pipeline.signed_out() {
        page::set_cookie("smclient=; path=/; max-age=0");
        shared.log(&[words::SIGNED_OUT]);
    }
    let contact = st
        .pipeline
        .contact(smclient, consent.allows_personal_data(), user.as_ref());
    let head = Head {
        client_id: &config.client_id,
        anonymous_id: anonymous_id.as_deref(),
        store_id: st.store_id.as_deref(),
    };
    protocol::body(&head, now, &contact, events)
}

/// A request asking which of `ids` the receiver holds: the ids that route it, nothing personal.
pub fn confirm_body(st: &mut State, now: u64, ids: &[String]) -> String {
    st.look_for_store_id();
    let head = Head {
        client_id: &st.pipeline.config().client_id,
        anonymous_id: None,
        store_id: st.store_id.as_deref(),
    };
    protocol::confirm_body(&head, now, ids)
}

/// Loads SALESmanago's monitoring script once, when the merchant switched it on and the
/// shopper's consent allows.
fn monitor(shared: &Shared, st: &mut State, consent: Consent) {
    if st.monitoring_started || !consent.allows_cookies() {
        return;
    }
    let config = st.pipeline.config();
    let Some(origin) = &config.monitoring else {
        return;
    };
    st.monitoring_started = true;
    shared.log(&[match sm(origin, &config.client_id) {
        Ok(true) => words::MONITORING_ADDED,
        Ok(false) => words::MONITORING_THERE,
        Err(_) => words::MONITORING_FAILED,
    }]);
}

/// Loads the monitoring script if consent allows it now (at start, and when the page gives
/// consent; otherwise each send looks again).
pub fn monitor_now(shared: &Shared, st: &mut State) {
    if st.pipeline.config().monitoring.is_some() && !st.monitoring_started {
        let consent = consent(st, &page::cookies());
        monitor(shared, st, consent);
    }
}

/// The receiver named the shopper's SALESmanago contact: kept in the `smclient` cookie where
/// consent allows, so that later batches (and SALESmanago's own script) name it.
pub fn contact_named(shared: &Shared, st: &State, contact_id: &str) {
    // The answer to a batch sent before the shopper signed out names the one who left.
    if st.pipeline.signed_out() {
        return shared.log(&[words::CONTACT_NOT_KEPT, words::SIGNED_OUT_SINCE]);
    }
    let cookies = page::cookies();
    if !consent(st, &cookies).allows_cookies() {
        return shared.log(&[words::CONTACT_NOT_KEPT, words::NO_COOKIE_CONSENT]);
    }
    let current = contact::cookie_value(&cookies, "smclient");
    if let Some(cookie) = contact::smclient_cookie(contact_id, current, page::https()) {
        page::set_cookie(&cookie);
        shared.log(&["contact ", contact_id, words::CONTACT_KEPT]);
    }
}
