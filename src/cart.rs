//! The held cart (`docs/mapping.md` §3).
//!
//! SALESmanago keeps one CART event per cart, updated in place, so every CART event must describe
//! the **whole** cart, while Salla's Product Added and Product Removed describe one line. The
//! tracker therefore holds the current cart: whole-cart events (Cart Viewed, Cart Updated,
//! Checkout Started) replace it, line events change it, a PURCHASE clears it. It round-trips
//! through a [`Value`] so the browser can keep it across page loads.

use crate::salla::{CartItem, CartSnapshot, Line, SallaEvent};
use crate::value::Value;

/// The shopper's current cart as the tracker knows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cart {
    /// Salla's cart id; the CART event's `externalId`.
    pub id: Option<String>,
    /// The lines, in the order they were added.
    pub lines: Vec<Line>,
    /// The total as Salla stated it (Cart Updated, Checkout Started); forgotten when a line
    /// changes, since it no longer holds.
    pub stated_total: Option<f64>,
    /// The cart's currency.
    pub currency: Option<String>,
    /// The coupon on the cart.
    pub coupon: Option<String>,
}

/// The cart id a cart event names (a checkout without a cart id is known by its checkout id),
/// if any; `None` for an event that is no cart event.
fn named_id(event: &SallaEvent) -> Option<Option<&str>> {
    Some(match event {
        SallaEvent::ProductAdded(item)
        | SallaEvent::WishlistProductAddedToCart(item)
        | SallaEvent::ProductRemoved(item) => item.cart_id.as_deref(),
        SallaEvent::CartViewed(snapshot) | SallaEvent::CartUpdated(snapshot) => {
            snapshot.cart_id.as_deref()
        }
        SallaEvent::CheckoutStarted(snapshot) => snapshot
            .cart_id
            .as_deref()
            .or(snapshot.checkout_id.as_deref()),
        _ => return None,
    })
}

/// The sum of price × quantity over the lines that have a price; `None` when none has. (A
/// loop, not a `filter_map` sum or a collected `Vec<f64>`: less of the wasm.)
pub fn priced_sum(lines: &[Line]) -> Option<f64> {
    let mut sum = None;
    for l in lines {
        if let Some(p) = l.price {
            *sum.get_or_insert(0.0) += p * l.quantity;
        }
    }
    sum
}

impl Cart {
    /// Updates the cart from a cart event; other events leave it alone. `true` for a cart
    /// event (the cart may have changed: it is kept again), without comparing a copy of the
    /// cart from before, which cost a clone of every line on every event.
    pub fn apply(&mut self, event: &SallaEvent) -> bool {
        let Some(id) = named_id(event) else {
            return false;
        };
        self.switch_to(id);
        match event {
            SallaEvent::ProductAdded(item) | SallaEvent::WishlistProductAddedToCart(item) => {
                self.add(item)
            }
            SallaEvent::ProductRemoved(item) => self.remove(item),
            SallaEvent::CartViewed(snapshot)
            | SallaEvent::CartUpdated(snapshot)
            | SallaEvent::CheckoutStarted(snapshot) => self.replace(snapshot),
            _ => {}
        }
        true
    }

    /// For a cart event, the cart's id once it is applied (`None` inside: the cart has none),
    /// without applying it; `None` for any other event.
    pub fn id_after<'a>(&'a self, event: &'a SallaEvent) -> Option<Option<&'a str>> {
        named_id(event).map(|id| id.or(self.id.as_deref()))
    }

    /// Forgets everything: the order was placed, or the shopper left.
    pub fn clear(&mut self) {
        *self = Cart::default();
    }

    /// The cart's value: the total Salla stated, else the sum of priced lines.
    pub fn value(&self) -> f64 {
        self.stated_total
            .unwrap_or_else(|| priced_sum(&self.lines).unwrap_or(0.0))
    }

    /// A line event for another cart id than the one held means the held cart is gone (ordered,
    /// or replaced by Salla): start afresh rather than mix two carts.
    fn switch_to(&mut self, cart_id: Option<&str>) {
        if let Some(id) = cart_id {
            if self.id.as_deref().is_some_and(|held| held != id) {
                self.clear();
            }
            self.id = Some(id.to_owned());
        }
    }

    fn add(&mut self, item: &CartItem) {
        let quantity = item.quantity.unwrap_or(1.0);
        match self
            .lines
            .iter_mut()
            .find(|l| l.product_id == item.product_id)
        {
            Some(line) => {
                line.quantity += quantity;
                if item.name.is_some() {
                    line.name = item.name.clone();
                }
                if item.price.is_some() {
                    line.price = item.price;
                }
            }
            None => self.lines.push(Line {
                product_id: item.product_id.clone(),
                name: item.name.clone(),
                quantity,
                price: item.price,
            }),
        }
        self.note_item(item);
    }

    /// Removes the product's line, or only part of it when the event states a smaller quantity
    /// than the cart holds.
    fn remove(&mut self, item: &CartItem) {
        if let Some(at) = self
            .lines
            .iter()
            .position(|l| l.product_id == item.product_id)
        {
            match item.quantity {
                Some(q) if q < self.lines[at].quantity => self.lines[at].quantity -= q,
                _ => {
                    self.lines.remove(at);
                }
            }
        }
        self.note_item(item);
    }

    fn note_item(&mut self, item: &CartItem) {
        self.stated_total = None;
        if item.currency.is_some() {
            self.currency = item.currency.clone();
        }
        if item.coupon.is_some() {
            self.coupon = item.coupon.clone();
        }
    }

    fn replace(&mut self, snapshot: &CartSnapshot) {
        self.lines = snapshot.lines.clone();
        self.stated_total = snapshot.value;
        if snapshot.currency.is_some() {
            self.currency = snapshot.currency.clone();
        }
        self.coupon = snapshot.coupon.clone();
    }

    /// The cart as a JSON-like value, for storage.
    pub fn to_value(&self) -> Value {
        let text = |t: &Option<String>| t.as_deref().map_or(Value::Null, Value::from);
        let number = |n: Option<f64>| n.map_or(Value::Null, Value::Number);
        // Loops here and in `from_value`, not map/collect: ~480 B less of the wasm.
        let mut lines = Vec::with_capacity(self.lines.len());
        for l in &self.lines {
            lines.push(Value::object([
                ("id", Value::from(l.product_id.as_str())),
                ("name", text(&l.name)),
                ("qty", Value::Number(l.quantity)),
                ("price", number(l.price)),
            ]));
        }
        Value::object([
            ("id", text(&self.id)),
            ("lines", Value::Array(lines)),
            ("total", number(self.stated_total)),
            ("currency", text(&self.currency)),
            ("coupon", text(&self.coupon)),
        ])
    }

    /// Reads a cart stored by [`Cart::to_value`]. What cannot be read is left out: a damaged
    /// record gives a smaller cart, never an error.
    pub fn from_value(v: &Value) -> Cart {
        let text = |v: &Value, key| v.get(key).and_then(Value::as_str).map(str::to_owned);
        let number = |v: &Value, key| match v.get(key) {
            Some(Value::Number(n)) if n.is_finite() => Some(*n),
            _ => None,
        };
        let mut lines = Vec::new();
        if let Some(Value::Array(items)) = v.get("lines") {
            for item in items {
                let (Some(product_id), Some(quantity)) =
                    (text(item, "id"), number(item, "qty").filter(|q| *q > 0.0))
                else {
                    continue;
                };
                lines.push(Line {
                    product_id,
                    name: text(item, "name"),
                    quantity,
                    price: number(item, "price"),
                });
            }
        }
        Cart {
            id: text(v, "id"),
            lines,
            stated_total: number(v, "total"),
            currency: text(v, "currency"),
            coupon: text(v, "coupon"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salla::parse_value as parse;
    use crate::value::testing::val;

    /// Applies the event, and checks that `id_after` foretold the id it left.
    fn apply(cart: &mut Cart, name: &str, payload: Value) {
        let event = parse(name, &payload).unwrap().event;
        let foretold = cart.id_after(&event).map(|id| id.map(str::to_owned));
        let before = cart.id.clone();
        let is_cart_event = cart.apply(&event);
        assert_eq!(foretold.is_some(), is_cart_event, "{name}");
        assert_eq!(cart.id, foretold.unwrap_or(before), "{name} {payload:?}");
    }

    fn ids(cart: &Cart) -> Vec<(&str, f64)> {
        cart.lines
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity))
            .collect()
    }

    #[test]
    fn line_events_change_one_line() {
        let mut cart = Cart::default();
        apply(
            &mut cart,
            "Product Added",
            val!({"cart_id": 9, "product_id": 1, "price": "250.5", "quantity": 2}),
        );
        apply(
            &mut cart,
            "Product Added",
            val!({"cart_id": 9, "product_id": 2, "price": 10}),
        );
        apply(
            &mut cart,
            "Product Added",
            val!({"cart_id": 9, "product_id": 1}),
        );
        assert_eq!(ids(&cart), [("1", 3.0), ("2", 1.0)]);
        assert_eq!(cart.value(), 761.5);
        apply(
            &mut cart,
            "Product Removed",
            val!({"cart_id": 9, "product_id": 1, "quantity": 1}),
        );
        assert_eq!(
            ids(&cart),
            [("1", 2.0), ("2", 1.0)],
            "a smaller quantity removes part"
        );
        apply(
            &mut cart,
            "Product Removed",
            val!({"cart_id": 9, "product_id": 1}),
        );
        assert_eq!(ids(&cart), [("2", 1.0)], "no quantity removes the line");
        apply(
            &mut cart,
            "Product Removed",
            val!({"cart_id": 9, "product_id": 404}),
        );
        assert_eq!(
            ids(&cart),
            [("2", 1.0)],
            "removing what is not there changes nothing"
        );
        assert_eq!(cart.id.as_deref(), Some("9"));
    }

    #[test]
    fn snapshots_replace_the_cart_and_state_its_total() {
        let mut cart = Cart::default();
        apply(
            &mut cart,
            "Product Added",
            val!({"cart_id": "9", "product_id": "1", "price": 5}),
        );
        apply(
            &mut cart,
            "Cart Updated",
            val!({"cart_id": "9", "value": 99, "currency": "SAR",
            "products": [{"product_id": "7", "quantity": 3, "price": 30, "coupon": "EID"}]}),
        );
        assert_eq!(ids(&cart), [("7", 3.0)]);
        assert_eq!(
            cart.value(),
            99.0,
            "the stated total, with shipping and tax"
        );
        assert_eq!(cart.coupon.as_deref(), Some("EID"));
        apply(
            &mut cart,
            "Product Added",
            val!({"cart_id": "9", "product_id": "8", "price": 1}),
        );
        assert_eq!(
            cart.value(),
            91.0,
            "a line change makes the stated total stale"
        );
    }

    #[test]
    fn another_cart_id_starts_a_new_cart() {
        let mut cart = Cart::default();
        apply(
            &mut cart,
            "Product Added",
            val!({"cart_id": "9", "product_id": "1"}),
        );
        apply(
            &mut cart,
            "Product Added",
            val!({"cart_id": "10", "product_id": "2"}),
        );
        assert_eq!(ids(&cart), [("2", 1.0)]);
        assert_eq!(cart.id.as_deref(), Some("10"));
        apply(&mut cart, "Product Added", val!({"product_id": "3"}));
        assert_eq!(
            cart.id.as_deref(),
            Some("10"),
            "an event without cart id keeps the cart"
        );
    }

    #[test]
    fn checkout_without_cart_id_uses_checkout_id() {
        let mut cart = Cart::default();
        apply(
            &mut cart,
            "Checkout Started",
            val!({"checkout_id": "c1", "products": [{"product_id": "1"}]}),
        );
        assert_eq!(cart.id.as_deref(), Some("c1"));
    }

    #[test]
    fn round_trips_and_survives_damage() {
        let mut cart = Cart::default();
        apply(
            &mut cart,
            "Cart Updated",
            val!({"cart_id": "9", "value": 12.5, "currency": "SAR",
            "products": [{"product_id": "1", "name": "عود", "quantity": 2, "price": 6.25}]}),
        );
        assert_eq!(Cart::from_value(&cart.to_value()), cart);
        let damaged = val!({"id": 3, "lines": [{"id": "1", "qty": -1}, {"id": "2", "qty": 1}, 7], "total": "x"});
        let back = Cart::from_value(&damaged);
        assert_eq!(ids(&back), [("2", 1.0)]);
        assert_eq!(back.id, None);
        assert_eq!(Cart::from_value(&Value::Null), Cart::default());
    }
}
