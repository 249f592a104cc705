//! `JsValue` ⇄ [`Value`], in one place.
