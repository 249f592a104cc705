//! `localStorage`, where the page allows it. Every call may throw (storage disabled, quota
//! exceeded, a sandboxed iframe): each failure reads as "nothing stored" and writes as `false`,
//! and the tracker carries on in memory.

use super::value::from_js;
use crate::value::Value;
use js_sys::JSON;
use web_sys::Storage;

fn local() -> Option<Storage> {
    super::window()?.local_storage().ok().flatten()
}

/// The value stored under `key`; `None` if absent, unreadable or not JSON.
pub fn load(key: &str) -> Option<Value> {
    let text = local()?.get_item(key).ok()??;
    JSON::parse(&text).ok().map(|v| from_js(&v))
}

/// Stores `value` under `key` as JSON. `false` if the page's storage refused it.
pub fn save(key: &str, value: &Value) -> bool {
    local().is_some_and(|storage| storage.set_item(key, &value.to_json()).is_ok())
}

/// Removes `key`; failures are ignored (there is nothing left to do about them).
pub fn remove(key: &str) {
    if let Some(storage) = local() {
        let _ = storage.remove_item(key);
    }
}

/// Every key that starts with `prefix`, as the suffix after it.
pub fn keys_with_prefix(prefix: &str) -> Vec<String> {
    let Some(storage) = local() else {
        return Vec::new();
    };
    let n = storage.length().unwrap_or(0);
    (0..n)
        .filter_map(|i| storage.key(i).ok().flatten())
        .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
        .collect()
}
