//! Browser tests: the core running as wasm in headless Chromium, fed real JavaScript values.
#![cfg(target_arch = "wasm32")]

use js_sys::{Object, Reflect, JSON};
use salla_salesmanago::browser::value::{from_js, tape_of};
use salla_salesmanago::config::Config;
use salla_salesmanago::mapping::Env;
use salla_salesmanago::pipeline::{Outcome, Pipeline};
use salla_salesmanago::tape::Tape;
use salla_salesmanago::value::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn js(json: &str) -> JsValue {
    JSON::parse(json).expect("test JSON")
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap()
}

#[wasm_bindgen_test]
fn a_salla_payload_from_javascript_becomes_the_expected_contact_event() {
    let payload = js(
        r#"{"event_id":"e-1","cart_id":9,"product_id":1001,"name":"عطر العود",
        "price":"250.50","quantity":2,"currency":"SAR"}"#,
    );
    let mut pipeline = Pipeline::new(Config::new("client-1", "/collect"));
    let env = Env {
        now_ms: 1_763_829_999_000,
        shop_domain: Some("store.example"),
        store_id: Some("123"),
    };
    let processed = pipeline.process("Product Added", &tape_of(&payload), &env, || {
        unreachable!("the payload has an event_id")
    });
    let Outcome::Send(envelope) = processed.outcome else {
        panic!("{:?}", processed.outcome)
    };
    // The JSON text the transport sends, read by the browser's own JSON.parse.
    let sent = js(&envelope.to_value().to_json());
    assert_eq!(get(&sent, "id"), "e-1");
    let event = get(&sent, "contactEvent");
    assert_eq!(get(&event, "contactExtEventType"), "CART");
    assert_eq!(get(&event, "products"), "1001");
    assert_eq!(get(&event, "value").as_f64(), Some(501.0));
    assert_eq!(get(&event, "externalId"), "9");
    assert_eq!(get(&event, "detail1"), "عطر العود");
    assert_eq!(get(&event, "detail2"), "2");
    assert_eq!(get(&event, "detail3"), "250.5");
    assert_eq!(get(&event, "detail4"), "SAR");
    assert_eq!(get(&event, "location"), "123");
    assert_eq!(get(&event, "date").as_f64(), Some(1_763_829_999_000.0));
}

#[wasm_bindgen_test]
fn hostile_objects_are_read_within_bounds_without_throwing() {
    // A cycle, a getter that throws, a megabyte string, a function and a symbol.
    let o = Object::new();
    Reflect::set(&o, &"self".into(), &o).unwrap();
    Reflect::set(&o, &"name".into(), &"x".repeat(1_000_000).into()).unwrap();
    Reflect::set(&o, &"fn".into(), &js_sys::Function::new_no_args("return 1")).unwrap();
    Reflect::set(&o, &"sym".into(), &js_sys::Symbol::for_("s")).unwrap();
    let throwing = js_sys::Function::new_no_args("throw new Error('boom')");
    let descriptor = Object::new();
    Reflect::set(&descriptor, &"get".into(), &throwing).unwrap();
    Reflect::set(&descriptor, &"enumerable".into(), &true.into()).unwrap();
    Object::define_property(&o, &"price".into(), &descriptor);

    let v = from_js(&o);
    let name = v.get("name").and_then(Value::as_str).unwrap();
    assert_eq!(name.len(), 2049, "cut before entering wasm memory");
    assert_eq!(
        v.get("price"),
        Some(&Value::Null),
        "a throwing getter reads as null"
    );
    assert_eq!(v.get("fn"), Some(&Value::Null));
    assert_eq!(v.get("sym"), Some(&Value::Null));
    // The cycle ends at the depth bound.
    let mut depth = 0;
    let mut at = &v;
    while let Some(next) = at.get("self") {
        at = next;
        depth += 1;
    }
    assert_eq!(depth, 6);

    let mut pipeline = Pipeline::new(Config::new("c", "/collect"));
    let processed = pipeline.process("Product Viewed", &Tape::from(&v), &Env::default(), || {
        "id".into()
    });
    assert!(
        matches!(processed.outcome, Outcome::Rejected(_)),
        "no product_id"
    );
}

#[wasm_bindgen_test]
fn every_shape_a_payload_can_take_reads_back_the_same() {
    // Keys and text that look like the reader's own tokens, numbers JSON cannot write, NUL.
    let v = js_sys::eval(
        r#"({ "}": 1, "k": [true, false, null, undefined, -0, 1e21, 0.1 + 0.2, Infinity],
            "": { "]": "s\u0000t", "n": "عطر 🌹", "{": [[], {}, [{ "d": 2.5 }]] }, "z": "" })"#,
    )
    .unwrap();
    let v = from_js(&v);
    let n = |x: f64| Value::Number(x);
    let o = |fields: Vec<(&str, Value)>| Value::object(fields);
    assert_eq!(
        v,
        o(vec![
            ("}", n(1.0)),
            (
                "k",
                Value::Array(vec![
                    Value::Bool(true),
                    Value::Bool(false),
                    Value::Null,
                    Value::Null,
                    n(-0.0),
                    n(1e21),
                    n(0.1 + 0.2),
                    n(f64::INFINITY),
                ])
            ),
            (
                "",
                o(vec![
                    ("]", Value::from("st")),
                    ("n", Value::from("عطر 🌹")),
                    (
                        "{",
                        Value::Array(vec![
                            Value::Array(vec![]),
                            o(vec![]),
                            Value::Array(vec![o(vec![("d", n(2.5))])]),
                        ])
                    ),
                ])
            ),
            ("z", Value::from("")),
        ])
    );
}

#[wasm_bindgen_test]
fn nan_from_javascript_is_never_sent() {
    let payload = Object::new();
    Reflect::set(&payload, &"product_id".into(), &"1".into()).unwrap();
    Reflect::set(&payload, &"price".into(), &JsValue::from_f64(f64::NAN)).unwrap();
    let mut pipeline = Pipeline::new(Config::new("c", "/collect"));
    let processed = pipeline.process(
        "Product Viewed",
        &tape_of(&payload),
        &Env::default(),
        || "id".into(),
    );
    let Outcome::Send(envelope) = processed.outcome else {
        panic!()
    };
    assert_eq!(envelope.event.to_value().get("value"), None);
    assert_eq!(processed.warnings.len(), 1);
}

/// Resolves with what `promise` settles to (fulfilled or rejected).
fn settled(promise: js_sys::Promise) -> impl std::future::Future<Output = JsValue> {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::task::{Poll, Waker};
    let slot: Rc<RefCell<(Option<JsValue>, Option<Waker>)>> = Rc::default();
    let done = {
        let slot = slot.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |v| {
            let mut s = slot.borrow_mut();
            s.0 = Some(v);
            if let Some(w) = s.1.take() {
                w.wake();
            }
        })
    };
    let _ = promise.then2(&done, &done);
    std::future::poll_fn(move |cx| {
        let _alive = &done;
        let mut s = slot.borrow_mut();
        match s.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
}

/// Runs JavaScript in the test page (the page's side of a scenario).
fn page(code: &str) -> JsValue {
    js_sys::Function::new_no_args(code)
        .call0(&JsValue::NULL)
        .unwrap()
}

fn start_tracker(config: &str) {
    let guard = js_sys::Function::new_with_args("f", "return f");
    let tracker = salla_salesmanago::browser::start(js(config), guard, JsValue::UNDEFINED)
        .expect("a valid configuration");
    let window: JsValue = web_sys::window().unwrap().into();
    Reflect::set(&window, &"__tracker".into(), &tracker.into()).unwrap();
}

#[wasm_bindgen_test]
async fn calls_the_page_makes_while_the_tracker_is_busy_are_applied_not_skipped() {
    // Reading Salla's store id runs the page's own code while the tracker maps an event; that
    // code names the shopper and gives consent. Both calls must take effect (they were once
    // dropped because the tracker's state was in use, identify answering "not an email").
    page(
        r#"
        localStorage.clear();
        window.__sent = [];
        const fetch = (window.__fetch = window.fetch);
        window.fetch = function (url, init) { window.__sent.push(new TextDecoder().decode(init.body)); return fetch.call(this, url, init); };
        window.Salla = {
          config: { get() {
            if (!window.__reentered) {
              window.__reentered = true;
              window.__identified = window.__tracker.identify('noura@example.sa');
              window.__tracker.setConsent(true);
            }
            return '77';
          } },
          storage: { get: () => 'rejected' },
        };
        "#,
    );
    start_tracker(r#"{"clientId":"c","endpoint":"/no-receiver-here","sendEmail":true}"#);
    let flushed = page(
        "window.__tracker.track('Product Viewed', { product_id: '1' }); return window.__tracker.flush();",
    );
    settled(flushed.into()).await;
    assert_eq!(page("return window.__identified"), JsValue::TRUE);
    let sent = page("return window.__sent");
    let sent: &js_sys::Array = sent.unchecked_ref();
    assert_eq!(sent.length(), 1);
    let body = JSON::parse(&sent.get(0).as_string().unwrap()).unwrap();
    assert_eq!(get(&get(&body, "contact"), "email"), "noura@example.sa");
    let event = get(&get(&body, "events"), "0");
    assert_eq!(get(&get(&event, "contactEvent"), "location"), "77");
    page("window.__tracker.shutdown(); delete window.Salla; window.fetch = window.__fetch;");
}

#[wasm_bindgen_test]
async fn after_shutdown_nothing_is_taken_and_nothing_is_sent() {
    page("localStorage.clear(); window.__sent = [];");
    start_tracker(r#"{"clientId":"c","endpoint":"/no-receiver-here"}"#);
    page("window.__tracker.shutdown();");
    page(
        r#"
        const fetch = (window.__fetch = window.fetch);
        window.fetch = function (url, init) { window.__sent.push(init.body); return fetch.call(this, url, init); };
        window.__tracker.track('Product Viewed', { product_id: '1' });
        window.dispatchEvent(new CustomEvent('Product Viewed', { detail: { product_id: '2' } }));
        "#,
    );
    let flushed = settled(page("return window.__tracker.flush()").into()).await;
    assert_eq!(flushed, JsValue::TRUE, "nothing is left waiting");
    // Past the batch window and a slice or two.
    settled(page("return new Promise((r) => setTimeout(r, 100))").into()).await;
    assert_eq!(page("return window.__sent.length"), JsValue::from(0));
    assert_eq!(
        page("return Object.keys(localStorage).filter((k) => /^sm:[og]:/.test(k)).length"),
        JsValue::from(0)
    );
    page("window.fetch = window.__fetch;");
}

#[wasm_bindgen_test]
async fn a_tracker_freed_mid_flush_still_answers_and_lets_the_lock_go() {
    page("localStorage.clear();");
    start_tracker(r#"{"clientId":"c","endpoint":"/no-receiver-here"}"#);
    // Freed while its flush waits for the send lock: the work's continuations are dropped
    // unrun. The page's promise must settle (false: nothing is known to be sent) …
    let flushed = page(
        r#"
        const t = window.__tracker;
        t.track('Product Viewed', { product_id: '1' });
        const flushed = t.flush();
        t.free();
        delete window.__tracker;
        return flushed;
        "#,
    );
    assert_eq!(settled(flushed.into()).await, JsValue::FALSE);
    // … and the Web Lock must be free again: the next tracker's flush is answered.
    start_tracker(r#"{"clientId":"c","endpoint":"/no-receiver-here"}"#);
    let next = page("window.__tracker.track('Product Viewed', { product_id: '2' }); return window.__tracker.flush();");
    assert_eq!(settled(next.into()).await, JsValue::TRUE);
    page("window.__tracker.shutdown();");
}
