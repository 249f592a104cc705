//! Salla storefront e-commerce events → SALESmanago external events.
//!
//! The crate is a pure core that knows nothing of the browser, in the order data flows through it:
//!
//! - [`value`]: the JSON-like values configuration and the page's facts arrive as;
//! - [`tape`]: an event's payload as it crossed from JavaScript, read in place;
//! - [`salla`]: Salla's event catalog, typed, with lenient parsing;
//! - [`cart`]: the held cart that whole-cart CART events describe;
//! - [`mapping`]: the table from Salla events to SALESmanago events;
//! - [`pipeline`]: one shopper's stream through parse → cart → identity → map;
//! - [`protocol`]: the v1 batch body sent to the receiver;
//! - [`outbox`]: the events waiting for the receiver's 2xx, batching and retry policy;
//! - [`kept`]: the outbox kept in storage the store's tabs share, many events to a record;
//! - [`delivery`]: how they go out: the batch window, `keepalive`, what each answer means;
//! - [`config`], [`contact`], [`salesmanago`], [`number`]: configuration, who the events are
//!   about, SALESmanago's types and limits,
//!   numbers as Salla sends them;
//! - [`words`]: the text of every message, kept out of the wasm;
//! - [`fifo`]: the queue the shell's inbox keeps its work in.
//!
//! On `wasm32`, `browser` adds the shell that moves bytes between this core and the page. With
//! the `receiver` feature (never in the wasm), `received` reads and checks batches on the
//! receiver's side.
#![deny(missing_docs)]

pub mod cart;
pub mod config;
pub mod contact;
pub mod delivery;
pub mod fifo;
pub mod kept;
pub mod mapping;
pub mod number;
pub mod outbox;
pub mod pipeline;
pub mod protocol;
#[cfg(feature = "receiver")]
pub mod received;
pub mod salesmanago;
pub mod salla;
pub mod tape;
pub mod value;
pub mod words;

#[cfg(target_arch = "wasm32")]
pub mod browser;

/// The wasm heap (see Cargo.toml for why talc).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
