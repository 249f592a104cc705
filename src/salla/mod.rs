//! Salla's storefront e-commerce events, typed (`docs/mapping.md` §1–§2).
//!
//! [`parse`] turns an event name and a JSON-like payload into a [`SallaEvent`]. It is lenient the
//! way Salla's data needs: prices and quantities may be numeric strings, ids may be numbers, any
//! field may be missing. A field of the wrong type is left out with a [`Warning`] that names it;
//! only a payload the event cannot be sent without (no `product_id` on a Product Viewed, a
//! payload that is not an object) is refused with a [`ParseError`]. Parsing never panics.
//!
//! - `catalog`: the one table of events — names, spellings, payload types, quiet or not;
//! - `payload`: the typed payloads and which fields each takes;
//! - `reader`: lenient reading of a payload's fields, and the warnings it gives;
//! - `error`: what makes an event unsendable;
//! - [`bus`]: Twilight's event bus, where the events the store's allow-list withholds are taken.
//!
//! This module knows nothing of SALESmanago; `mapping` decides what each event becomes.

mod catalog;
mod error;
mod payload;
mod reader;

pub mod bus;

pub use catalog::{Kind, Quiet, SallaEvent};
pub use error::{ParseError, Problem};
pub use payload::{
    Account, CartItem, CartSnapshot, Coupon, Custom, Line, Order, Page, Product, Promotion, Review,
    Search, Shared, WishlistItem,
};
pub use reader::Warning;

use crate::salesmanago::truncate;
use crate::tape::{Item, List, Tape};
use reader::Reader;

/// A parsed event with what parsing noticed on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The event.
    pub event: SallaEvent,
    /// The payload's `event_id`, which Salla sets on every tracker call.
    pub event_id: Option<String>,
    /// Fields that were present but unusable, and were left out.
    pub warnings: Vec<Warning>,
}

/// Parses the event `name` with its `payload`, read straight from its tape.
///
/// A `null` payload (JavaScript `undefined` included) reads as an empty object.
pub fn parse(name: &str, payload: &Tape) -> Result<Parsed, ParseError> {
    let name = name.trim();
    let fail = |problem| ParseError {
        event: truncate(name, 80).to_owned(),
        problem,
    };
    if name.is_empty() {
        return Err(fail(Problem::NoName));
    }
    let fields = match payload.root() {
        Item::Object(fields) => fields,
        Item::Null => List::default(),
        other => return Err(fail(Problem::NotAnObject { got: other.kind() })),
    };
    let kind = Kind::from_name(name);
    let mut r = Reader::new(kind.map_or(name, |k| k.name()), fields);
    let event_id = r.text("event_id");
    let event = match kind {
        Some(kind) => catalog::read(kind, &mut r).map_err(fail)?,
        None => SallaEvent::Custom(Custom::read(name, &mut r)),
    };
    Ok(Parsed {
        event,
        event_id,
        warnings: r.into_warnings(),
    })
}

/// [`parse`] of a [`Value`](crate::value::Value): for tests, which write payloads as values.
#[cfg(test)]
pub(crate) fn parse_value(name: &str, payload: &crate::value::Value) -> Result<Parsed, ParseError> {
    parse(name, &Tape::from(payload))
}

#[cfg(test)]
mod tests;
