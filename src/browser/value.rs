//! `JsValue` ⇄ [`Value`], in one place.
//!
//! What the page hands the tracker is untrusted: it may be cyclic, hold getters that throw, be a
//! Proxy, or carry a megabyte string. [`from_js`] reads it within fixed bounds (depth, total
//! nodes, string length) and never throws; what is out of bounds reads as `null`, which the
//! parser then reports as a missing field.

use crate::salesmanago::limits;
use crate::value::Value;
use js_sys::{Array, JsString, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Nesting read from a payload: `products[i].field` is depth 3; more is never needed.
const MAX_DEPTH: u32 = 6;
/// Values read from one payload in all: bounds the work a cyclic or huge object can cause.
const MAX_NODES: u32 = 5_000;

#[wasm_bindgen]
extern "C" {
    /// `Object.keys`, which throws on some Proxies: caught here rather than in the page.
    #[wasm_bindgen(js_namespace = Object, js_name = keys, catch)]
    fn object_keys(o: &JsValue) -> Result<Array, JsValue>;

    /// The browser's own deep copy. Throws for what it cannot copy (functions, Proxies, DOM
    /// nodes) and where it is missing (old browsers): caught.
    #[wasm_bindgen(js_name = structuredClone, catch)]
    fn structured_clone(v: &JsValue) -> Result<JsValue, JsValue>;
}

/// A payload taken from the page: a copy the page can no longer change, read into a [`Value`]
/// later, off the page's call.
pub enum Snapshot {
    /// The browser's deep copy, not read yet.
    Copy(JsValue),
    /// Read at once: the browser could not copy it.
    Read(Value),
}

impl Snapshot {
    /// Copies `v` natively if the browser can (cheap for the page's call), else reads it now.
    pub fn take(v: &JsValue) -> Snapshot {
        if !v.is_object() {
            return Snapshot::Read(from_js(v));
        }
        match structured_clone(v) {
            Ok(copy) => Snapshot::Copy(copy),
            Err(_) => Snapshot::Read(from_js(v)),
        }
    }

    /// The payload as a [`Value`].
    pub fn read(self) -> Value {
        match self {
            Snapshot::Copy(copy) => from_js(&copy),
            Snapshot::Read(value) => value,
        }
    }
}

/// Reads a JavaScript value into a [`Value`], within bounds, without throwing.
pub fn from_js(v: &JsValue) -> Value {
    let mut budget = MAX_NODES;
    read(v, 0, &mut budget)
}

fn read(v: &JsValue, depth: u32, budget: &mut u32) -> Value {
    if *budget == 0 {
        return Value::Null;
    }
    *budget -= 1;
    if let Some(b) = v.as_bool() {
        return Value::Bool(b);
    }
    if let Some(n) = v.as_f64() {
        return Value::Number(n);
    }
    if let Some(s) = v.dyn_ref::<JsString>() {
        return Value::String(text(s));
    }
    if depth >= MAX_DEPTH || !v.is_object() || v.is_function() {
        // null, undefined, symbols, bigints, functions, and whatever lies too deep.
        return Value::Null;
    }
    if Array::is_array(v) {
        let items: &Array = v.unchecked_ref();
        let mut out = Vec::new();
        for i in 0..items.length() {
            if *budget == 0 {
                break;
            }
            let item = Reflect::get_u32(v, i).unwrap_or(JsValue::NULL);
            out.push(read(&item, depth + 1, budget));
        }
        return Value::Array(out);
    }
    let Ok(keys) = object_keys(v) else {
        return Value::Null;
    };
    let mut out = Vec::new();
    for key in keys.iter() {
        if *budget == 0 {
            break;
        }
        let Some(name) = key.as_string() else {
            continue;
        };
        let item = Reflect::get(v, &key).unwrap_or(JsValue::NULL);
        out.push((name, read(&item, depth + 1, budget)));
    }
    Value::Object(out)
}

/// A string, cut in JavaScript to the longest text the tracker keeps before it is copied into
/// wasm memory (a 1 MB name costs nothing). The core cuts again on a character boundary.
fn text(s: &JsString) -> String {
    let keep = (limits::KEEP_TEXT + 1) as u32;
    if s.length() > keep {
        String::from(s.slice(0, keep))
    } else {
        String::from(s)
    }
}
