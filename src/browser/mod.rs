//! The browser shell: the only part of the crate that touches `js-sys`/`web-sys`. It moves values
//! between the page and the pure core; decisions stay in the core.

pub mod value;
