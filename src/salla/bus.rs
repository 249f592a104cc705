//! Twilight's event bus: where the tracker takes the events the store's allow-list withholds
//! (`docs/mapping.md` §1, "Events Salla withholds").
//!
//! Salla's analytics engine reads every storefront event off Twilight's event bus
//! (`Salla.event`), where Salla's servers, the SDK and the web components emit them raw, and
//! hands a tracker only those named in the store's allow-list (`jitsu.events`). The shell listens
//! on the same bus for the same raw events and asks [`take`] about each: it is taken exactly when
//! the engine drops it, by the engine's own test of the allow-list asked at the same moment
//! ([`delivered`]). So each action reaches the tracker once, through the engine or through the
//! bus, whatever the allow-list says; and [`ROUTES`] reads the raw payload into the very payload
//! the engine would have built, so the catalog and the mapping see the same event either way.
//!
//! What the shell hands [`take`] is one object: the bus event's first two arguments under `"0"`
//! and `"1"`, and what the page said at that moment, read as Salla's engine reads it:
//! - `allow`: the allow-list, `Salla.config.get('jitsu.events')`;
//! - `page`: the page's slug; `user_type`: `guest` or `user`; `user`: the stored shopper
//!   (`localStorage.user`, where Salla keeps the profile);
//! - `currency`: the shopper's currency code; `source`: the widget that is adding to the cart
//!   (`Salla.cart.api.addToCartSource`); `wishlist_id`: `<store id>_<user id>`.
//!
//! The routes are data: paths into that object, never code per event.

use super::Kind;
use crate::value::Value;

/// A condition a route holds under: a path, and what must be there.
#[derive(Debug, Clone, Copy)]
enum When {
    /// Text equal to this.
    Is(&'static str, &'static str),
    /// Anything but this text (missing included).
    IsNot(&'static str, &'static str),
    /// Present: not missing, null or `false`.
    Set(&'static str),
    /// Missing, null or `false`.
    Unset(&'static str),
}

/// One raw bus event read as one catalog event.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The bus event's name.
    pub bus: &'static str,
    /// The catalog event it becomes.
    pub kind: Kind,
    /// All must hold, or the next route of the same bus name is tried: Salla's engine would
    /// report the event as another, or not at all.
    when: &'static [When],
    /// The path of the object the fields are read from.
    at: &'static str,
    /// The payload's fields, separated by commas: `to=from|alternative` (the first path found wins),
    /// or `key` for `key=key`. A path is relative to `at`; one starting with `@` starts at the
    /// top (the arguments and the page's context). (One text rather than a slice of texts: a
    /// pointer and a length per field would be most of the table's bytes in the wasm.)
    fields: &'static str,
    /// The object at `at` is the payload as it is (Salla passes Order Completed through).
    whole: bool,
    /// A list of lines: the payload's key, the list's path (relative to `at`) and each line's
    /// fields (relative to the line).
    lines: Option<(&'static str, &'static str, &'static str)>,
}

const fn route(bus: &'static str, kind: Kind, at: &'static str, fields: &'static str) -> Route {
    Route {
        bus,
        kind,
        when: &[],
        at,
        fields,
        whole: false,
        lines: None,
    }
}

/// A route whose payload is the object at `at`, as it is.
const fn passed_through(bus: &'static str, kind: Kind, at: &'static str) -> Route {
    Route {
        whole: true,
        ..route(bus, kind, at, "")
    }
}

impl Route {
    const fn when(mut self, when: &'static [When]) -> Route {
        self.when = when;
        self
    }

    const fn lines(mut self, to: &'static str, from: &'static str, fields: &'static str) -> Route {
        self.lines = Some((to, from, fields));
        self
    }

    /// The name Salla's engine looks up in the allow-list: an SDK or component event (`ns::…`)
    /// is first re-emitted under its catalog name, which is what the engine checks; a server
    /// event is checked under its own name (a Product Added on the wishlist page is reported as
    /// Wishlist Product Added to Cart, but allowed as Product Added).
    pub fn gate(&self) -> &'static str {
        // (A byte test, not `str::contains`: its substring searcher is ~2 KB of the wasm.)
        if self.bus.bytes().any(|b| b == b':') {
            self.kind.name()
        } else {
            self.bus
        }
    }
}

use Kind::*;
use When::*;

/// A line added to or removed from the cart, as Salla's server reports it.
const CART_LINE: &str = "cart_id, product_id=id, name, price, quantity, coupon, currency=@currency";
/// A line added by the frequently-bought-together or basket-gap widget.
const WIDGET_LINE: &str = "cart_id=cartId, product_id=product.id, name=product.name, price=product.price, quantity=cartItem.quantity, coupon=cartItem.coupon, currency=@currency";
/// Salla's engine reads the account from the page's stored user, not from the event.
const ACCOUNT: &str = "email=@user.email, first_name=@user.first_name, last_name=@user.last_name, mobile=@user.mobile";
const WISHLIST: &str = "product_id=id|@1, name, price, wishlist_id=@wishlist_id";
const PROMOTION: &str = "promotion_id=id, creative, name, position";
/// Signed In and Signed Up only once Salla knows the shopper as a user.
const SIGNED_IN: &[When] = &[Is("user_type", "user")];

/// Every bus event the tracker can take,  in the order routes of one name are tried. The events
/// the mapping has no use for (the quiet ones),  and Product Shared and Product Reviewed (built
/// from Salla's own history and a rating hook,  not from one bus event),  are not here.
#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    // Salla's servers: the catalog's own names,  the item first in an array.
    route("Product Viewed", ProductViewed, "0.0", "product_id=id, name, category, brand, url, sku, currency, price, value"),
    route("Product Added", ProductAdded, "0.0", WIDGET_LINE).when(&[Set("0.0.product")]),
    route("Product Added", WishlistProductAddedToCart, "0.0", CART_LINE)
        .when(&[Is("page", "customer.wishlist")]),
    // A widget's add is also reported by the widget: not twice.
    route("Product Added", ProductAdded, "0.0", CART_LINE)
        .when(&[IsNot("source", "pdp_fbt"), IsNot("source", "basket_gap")]),
    route("Product Removed", ProductRemoved, "0.0", CART_LINE),
    route("Cart Viewed", CartViewed, "0.0", "cart_id, currency=@currency")
        .lines("products", "products", "product_id=id, name, price, quantity, coupon"),
    passed_through("Order Completed", OrderCompleted, "0.0").when(&[Set("0.0")]),
    // Twilight's SDK: the whole cart after a change on the cart page (not the page's own fetch).
    route("cart::updated", CartUpdated, "0", "cart_id=id, value=total, coupon, currency=@currency")
    .lines("products", "items", "product_id, name=product_name, price=product_price, quantity")
    .when(&[Is("page", "cart"), Unset("0.fromLatestFetched")]),
    route("cart::coupon.added", CouponApplied, "0", "cart_id=data.cart.id|@1, coupon_name=data.cart.coupon, discount=data.cart.discount"),
    route("cart::coupon.deleted", CouponRemoved, "0", "cart_id=data.cart.id|@1, coupon_name=coupon, discount=data.cart.discount"),
    route("cart::coupon.addition.failed", CouponDenied, "0", "cart_id=@1, reason=response.data.error.message"),
    route("wishlist::added", ProductAddedToWishlist, "0.data.product", WISHLIST),
    route("wishlist::removed", ProductRemovedFromWishlist, "0.data.product", WISHLIST),
    route("auth::logged.in", SignedIn, "", ACCOUNT).when(SIGNED_IN),
    route("auth::registered", SignedUp, "", ACCOUNT).when(SIGNED_IN),
    route("auth::logged.out", SignedOut, "", ""),
    // Web components.
    route("promotion::viewed", PromotionViewed, "0.0", PROMOTION),
    route("salla::offer.promotion.viewed", PromotionViewed, "0.0", PROMOTION),
    route("promotion::clicked", PromotionClicked, "0.0", PROMOTION),
    route("salla::offer.promotion.clicked", PromotionClicked, "0.0", PROMOTION),
    route("Products Searched", ProductsSearched, "0", "query=query|, total_results=total"),
];

/// The bus names of [`ROUTES`], separated by commas, in table order: what the shell listens for
/// (each once: the routes of one name are adjacent, and the shell skips a name it has seen).
pub fn names() -> String {
    let mut names = String::new();
    for r in ROUTES {
        if !names.is_empty() {
            names.push(',');
        }
        names.push_str(r.bus);
    }
    names
}

/// Whether Salla's engine hands the event `name` to trackers itself, by its own test:
/// `Salla.config.get('jitsu.events', []).includes(name)`. An array names events exactly; text
/// (not what Salla sends, but what `includes` would accept) holds any name it contains; missing,
/// or anything else (on which `includes` throws, so the engine reports nothing), names none.
pub fn delivered(allow: &Value, name: &str) -> bool {
    match allow {
        Value::Array(names) => names.iter().any(|n| n.as_str() == Some(name)),
        Value::String(text) => text
            .as_bytes()
            .windows(name.len().max(1))
            .any(|w| w == name.as_bytes()),
        _ => false,
    }
}

/// What to do with one bus event.
#[derive(Debug, Clone, PartialEq)]
pub enum Taken {
    /// Salla's engine hands it to the tracker itself: nothing to take.
    Delivered,
    /// No route holds: Salla's engine would not report it either (not on this page, the cart
    /// the page fetched, a shopper not signed in yet) or the name is not on the bus table.
    Unrouted,
    /// The catalog event, with the payload Salla's engine would have built.
    Event(Kind, Value),
}

/// Reads the bus event `bus`, given its arguments and the page's context in `input` (see the
/// module's documentation).
pub fn take(bus: &str, input: &Value) -> Taken {
    let Some(route) = ROUTES
        .iter()
        .filter(|r| r.bus == bus)
        .find(|r| r.when.iter().all(|w| holds(*w, input)))
    else {
        return Taken::Unrouted;
    };
    if delivered(input.get("allow").unwrap_or(&Value::Null), route.gate()) {
        return Taken::Delivered;
    }
    let base = at(input, route.at);
    if route.whole {
        return Taken::Event(route.kind, base.cloned().unwrap_or(Value::Null));
    }
    let mut payload = read(input, base, route.fields);
    if let (Some((to, from, fields)), Value::Object(out)) = (route.lines, &mut payload) {
        if let Some(Value::Array(items)) = base.and_then(|b| at(b, from)) {
            let mut lines = Vec::with_capacity(items.len());
            for i in items {
                lines.push(read(input, Some(i), fields));
            }
            out.push((to.to_owned(), Value::Array(lines)));
        }
    }
    Taken::Event(route.kind, payload)
}

fn holds(when: When, input: &Value) -> bool {
    let text = |path| at(input, path).and_then(Value::as_str);
    let set = |path| !matches!(at(input, path), None | Some(Value::Bool(false)));
    match when {
        Is(path, value) => text(path) == Some(value),
        IsNot(path, value) => text(path) != Some(value),
        Set(path) => set(path),
        Unset(path) => !set(path),
    }
}

/// The value at a dotted `path` (a number indexes an array; the empty path is `v` itself);
/// `None` where there is nothing, or only `null`.
fn at<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let mut v = v;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        v = match v {
            Value::Array(items) => items.get(index(key)?)?,
            other => other.get(key)?,
        };
    }
    (!v.is_null()).then_some(v)
}

/// A path's key as an array index (a few bytes of wasm where `str::parse` is a few hundred).
fn index(key: &str) -> Option<usize> {
    key.bytes().try_fold(0usize, |n, b| {
        let digit = b.wrapping_sub(b'0');
        (digit < 10).then(|| n.saturating_mul(10).saturating_add(usize::from(digit)))
    })
}

/// An object of `fields` read from `base` (and from `input`, for `@` paths).
fn read(input: &Value, base: Option<&Value>, fields: &str) -> Value {
    let mut out = Vec::new();
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (to, from) = field.split_once('=').unwrap_or((field, field));
        let found = from
            .split('|')
            .find_map(|path| match path.strip_prefix('@') {
                Some(path) => at(input, path),
                None => base.and_then(|b| at(b, path)),
            });
        if let Some(v) = found {
            out.push((to.to_owned(), v.clone()));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests;
