//! Salla's storefront e-commerce events (`spec/salla-events.md` §2), typed.
//!
//! [`parse`] turns an event name and a JSON-like payload into a [`SallaEvent`]. It is lenient the
//! way Salla's data needs: prices and quantities may be numeric strings, ids may be numbers, any
//! field may be missing. A field of the wrong type is left out with a [`Warning`] that names it;
//! only a payload the event cannot be sent without (no `product_id` on a Product Viewed, a
//! payload that is not an object) is refused with a [`ParseError`]. Parsing never panics.
//!
//! This module knows nothing of SALESmanago; `mapping` decides what each event becomes.

use crate::number;
use crate::salesmanago::{limits, truncate};
use crate::value::Value;
use std::fmt;

macro_rules! kinds {
    ($($variant:ident => $name:literal $(| $alias:literal)*,)+) => {
        /// Every event name of the catalog, plus `page` (Salla's `page()` call).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $(#[doc = $name] $variant,)+
        }

        impl Kind {
            /// Every catalog event.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)+];

            /// Every name a catalog event may arrive under, both wishlist spellings included.
            pub const NAMES: &'static [&'static str] = &[$($name, $($alias,)*)+];

            /// The canonical name (for the wishlist events, the spelling Salla's storefront emits).
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$variant => $name,)+
                }
            }

            /// The catalog event called `name`, in either wishlist spelling, ignoring ASCII case
            /// and surrounding white space.
            pub fn from_name(name: &str) -> Option<Kind> {
                let name = name.trim();
                $(
                    if name.eq_ignore_ascii_case($name) $(|| name.eq_ignore_ascii_case($alias))* {
                        return Some(Kind::$variant);
                    }
                )+
                None
            }
        }
    };
}

kinds! {
    ProductViewed => "Product Viewed",
    ProductAdded => "Product Added",
    ProductRemoved => "Product Removed",
    CartViewed => "Cart Viewed",
    CartUpdated => "Cart Updated",
    WishlistProductAddedToCart => "Wishlist Product Added to Cart",
    CheckoutStarted => "Checkout Started",
    OrderCompleted => "Order Completed",
    SignedIn => "Signed In",
    SignedUp => "Signed Up",
    SignedOut => "Signed Out",
    PromotionViewed => "Promotion Viewed",
    PromotionClicked => "Promotion Clicked",
    CouponApplied => "Coupon Applied",
    CouponRemoved => "Coupon Removed",
    CouponDenied => "Coupon Denied",
    ProductAddedToWishlist => "Product Added to Wishlist" | "Wishlist Product Added",
    ProductRemovedFromWishlist => "Product Removed from Wishlist" | "Wishlist Product Removed",
    ProductsSearched => "Products Searched",
    ProductShared => "Product Shared",
    ProductReviewed => "Product Reviewed",
    ProductListViewed => "Product List Viewed",
    ProductListFiltered => "Product List Filtered",
    ProductClicked => "Product Clicked",
    RecommendationListViewed => "Recommendation List Viewed",
    ProductReordered => "Product Reordered",
    UserProfileUpdated => "User Profile Updated",
    MarketSelected => "Market Selected",
    Page => "page",
}

/// A product as Product Viewed describes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Product {
    /// `product_id`.
    pub product_id: String,
    /// `name`.
    pub name: Option<String>,
    /// `category`.
    pub category: Option<String>,
    /// `brand`.
    pub brand: Option<String>,
    /// `url`.
    pub url: Option<String>,
    /// `sku`.
    pub sku: Option<String>,
    /// `currency`.
    pub currency: Option<String>,
    /// `price`, else `value`.
    pub price: Option<f64>,
}

/// One line of a cart or an order.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `product_id`.
    pub product_id: String,
    /// `name`.
    pub name: Option<String>,
    /// `quantity`; 1 where missing.
    pub quantity: f64,
    /// `price` (per unit).
    pub price: Option<f64>,
}

/// A change of one cart line: Product Added, Product Removed, Wishlist Product Added to Cart.
#[derive(Debug, Clone, PartialEq)]
pub struct CartItem {
    /// `cart_id`.
    pub cart_id: Option<String>,
    /// `product_id`.
    pub product_id: String,
    /// `name`.
    pub name: Option<String>,
    /// `price` (per unit).
    pub price: Option<f64>,
    /// `quantity` added or removed, where the payload states it.
    pub quantity: Option<f64>,
    /// `currency`.
    pub currency: Option<String>,
    /// `coupon`.
    pub coupon: Option<String>,
}

/// A whole cart: Cart Viewed, Cart Updated, Checkout Started.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CartSnapshot {
    /// `cart_id`.
    pub cart_id: Option<String>,
    /// `checkout_id` (Checkout Started only).
    pub checkout_id: Option<String>,
    /// `products[]`.
    pub lines: Vec<Line>,
    /// `value`: the cart total where the event states it.
    pub value: Option<f64>,
    /// `currency`, else the first product's.
    pub currency: Option<String>,
    /// `coupon`, else the first product's (Salla puts the cart's coupon on every product).
    pub coupon: Option<String>,
}

/// Order Completed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Order {
    /// `order_id`.
    pub order_id: Option<String>,
    /// `products[]`.
    pub lines: Vec<Line>,
    /// `total`, else `revenue`, else `value`.
    pub total: Option<f64>,
    /// `currency`.
    pub currency: Option<String>,
    /// `coupon`.
    pub coupon: Option<String>,
    /// `shipping`.
    pub shipping: Option<f64>,
    /// `tax`.
    pub tax: Option<f64>,
    /// `discount`.
    pub discount: Option<f64>,
}

/// Signed In, Signed Up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Account {
    /// `email`, as sent (checked where it is used).
    pub email: Option<String>,
}

/// Promotion Viewed, Promotion Clicked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Promotion {
    /// `promotion_id`.
    pub promotion_id: String,
    /// `name`.
    pub name: Option<String>,
    /// `creative`.
    pub creative: Option<String>,
    /// `position` (a string in the offer modal, a number in `salla-offer`).
    pub position: Option<String>,
}

/// Coupon Applied, Coupon Removed, Coupon Denied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Coupon {
    /// `cart_id`.
    pub cart_id: Option<String>,
    /// `coupon_name` (on the storefront it holds the code), else `coupon_code`.
    pub coupon_name: Option<String>,
    /// `discount`.
    pub discount: Option<f64>,
    /// `reason` (Coupon Denied).
    pub reason: Option<String>,
}

/// Product Added to Wishlist, Product Removed from Wishlist (either spelling).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WishlistItem {
    /// `product_id`.
    pub product_id: String,
    /// `name`.
    pub name: Option<String>,
    /// `price`.
    pub price: Option<f64>,
    /// `wishlist_id`.
    pub wishlist_id: Option<String>,
}

/// Products Searched.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Search {
    /// `query`.
    pub query: String,
    /// `total_results`.
    pub total_results: Option<f64>,
}

/// Product Shared.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shared {
    /// `product_id`.
    pub product_id: String,
    /// `share_via`.
    pub share_via: Option<String>,
}

/// Product Reviewed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Review {
    /// `product_id`.
    pub product_id: String,
    /// `rating`.
    pub rating: Option<String>,
    /// `review_body`.
    pub review_body: Option<String>,
}

/// Salla's `page()` call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// `name` (the page slug).
    pub name: Option<String>,
    /// `referrer`.
    pub referrer: Option<String>,
}

/// Catalog events SALESmanago gets nothing useful from; off unless configured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiet {
    /// Product List Viewed.
    ProductListViewed,
    /// Product List Filtered.
    ProductListFiltered,
    /// Product Clicked.
    ProductClicked,
    /// Recommendation List Viewed.
    RecommendationListViewed,
    /// Product Reordered.
    ProductReordered,
    /// User Profile Updated.
    UserProfileUpdated,
    /// Market Selected.
    MarketSelected,
}

/// An event name outside the catalog (a custom event from `Salla.analytics.track`).
#[derive(Debug, Clone, PartialEq)]
pub struct Custom {
    /// The name as received.
    pub name: String,
    /// Its scalar properties (text, numbers, booleans) as text, in key order; `event_id` excluded.
    pub properties: Vec<(String, String)>,
}

/// A Salla event, typed.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // each variant is the catalog event of the same name
pub enum SallaEvent {
    ProductViewed(Product),
    ProductAdded(CartItem),
    ProductRemoved(CartItem),
    WishlistProductAddedToCart(CartItem),
    CartViewed(CartSnapshot),
    CartUpdated(CartSnapshot),
    CheckoutStarted(CartSnapshot),
    OrderCompleted(Order),
    SignedIn(Account),
    SignedUp(Account),
    SignedOut,
    PromotionViewed(Promotion),
    PromotionClicked(Promotion),
    CouponApplied(Coupon),
    CouponRemoved(Coupon),
    CouponDenied(Coupon),
    ProductAddedToWishlist(WishlistItem),
    ProductRemovedFromWishlist(WishlistItem),
    ProductsSearched(Search),
    ProductShared(Shared),
    ProductReviewed(Review),
    Quiet(Quiet),
    Page(Page),
    /// Any name outside the catalog.
    Custom(Custom),
}

impl SallaEvent {
    /// The catalog kind; `None` for a custom event.
    pub fn kind(&self) -> Option<Kind> {
        use SallaEvent as E;
        Some(match self {
            E::ProductViewed(_) => Kind::ProductViewed,
            E::ProductAdded(_) => Kind::ProductAdded,
            E::ProductRemoved(_) => Kind::ProductRemoved,
            E::WishlistProductAddedToCart(_) => Kind::WishlistProductAddedToCart,
            E::CartViewed(_) => Kind::CartViewed,
            E::CartUpdated(_) => Kind::CartUpdated,
            E::CheckoutStarted(_) => Kind::CheckoutStarted,
            E::OrderCompleted(_) => Kind::OrderCompleted,
            E::SignedIn(_) => Kind::SignedIn,
            E::SignedUp(_) => Kind::SignedUp,
            E::SignedOut => Kind::SignedOut,
            E::PromotionViewed(_) => Kind::PromotionViewed,
            E::PromotionClicked(_) => Kind::PromotionClicked,
            E::CouponApplied(_) => Kind::CouponApplied,
            E::CouponRemoved(_) => Kind::CouponRemoved,
            E::CouponDenied(_) => Kind::CouponDenied,
            E::ProductAddedToWishlist(_) => Kind::ProductAddedToWishlist,
            E::ProductRemovedFromWishlist(_) => Kind::ProductRemovedFromWishlist,
            E::ProductsSearched(_) => Kind::ProductsSearched,
            E::ProductShared(_) => Kind::ProductShared,
            E::ProductReviewed(_) => Kind::ProductReviewed,
            E::Quiet(q) => match q {
                Quiet::ProductListViewed => Kind::ProductListViewed,
                Quiet::ProductListFiltered => Kind::ProductListFiltered,
                Quiet::ProductClicked => Kind::ProductClicked,
                Quiet::RecommendationListViewed => Kind::RecommendationListViewed,
                Quiet::ProductReordered => Kind::ProductReordered,
                Quiet::UserProfileUpdated => Kind::UserProfileUpdated,
                Quiet::MarketSelected => Kind::MarketSelected,
            },
            E::Page(_) => Kind::Page,
            E::Custom(_) => return None,
        })
    }

    /// The event's name: the canonical catalog name, or a custom event's own.
    pub fn name(&self) -> &str {
        match self {
            SallaEvent::Custom(c) => &c.name,
            other => other.kind().map_or("", Kind::name),
        }
    }
}

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

/// A field left out of an event because its value could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// The event's name.
    pub event: String,
    /// The field, e.g. `price` or `products[2].quantity`.
    pub field: String,
    /// What the field must be.
    pub expected: &'static str,
    /// What it was.
    pub got: String,
}

impl Warning {
    /// The message for the merchant. (Built without `format!`, as every message the wasm
    /// writes: Rust's formatting machinery would be a few KB of every shopper's download.)
    pub fn message(&self) -> String {
        [
            "`",
            &self.field,
            "` must be ",
            self.expected,
            ", got ",
            &self.got,
            " in ",
            &self.event,
            "; sent without it",
        ]
        .concat()
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// Why an event could not be parsed into something worth sending.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// The event's name as received.
    pub event: String,
    /// What was wrong.
    pub problem: Problem,
}

/// What was wrong with a payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The event had no name.
    NoName,
    /// The payload was not an object.
    NotAnObject {
        /// What it was.
        got: &'static str,
    },
    /// A field the event cannot be sent without was missing or empty.
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field the event cannot be sent without had an unusable value.
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it was.
        got: String,
    },
}

impl ParseError {
    /// The message for the merchant.
    pub fn message(&self) -> String {
        let event = if self.event.is_empty() {
            "an event"
        } else {
            &self.event
        };
        match &self.problem {
            Problem::NoName => "an event without a name was not sent".to_owned(),
            Problem::NotAnObject { got } => [
                event,
                " was not sent: its payload must be an object, got ",
                got,
            ]
            .concat(),
            Problem::MissingField { field } => {
                [event, " was not sent: `", field, "` is missing"].concat()
            }
            Problem::WrongType {
                field,
                expected,
                got,
            } => [
                event,
                " was not sent: `",
                field,
                "` must be ",
                expected,
                ", got ",
                got,
            ]
            .concat(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ParseError {}

/// Parses the event `name` with its `payload`.
///
/// A `null` payload (JavaScript `undefined` included) reads as an empty object.
pub fn parse(name: &str, payload: &Value) -> Result<Parsed, ParseError> {
    let name = name.trim();
    let fail = |problem| ParseError {
        event: truncate(name, 80).to_owned(),
        problem,
    };
    if name.is_empty() {
        return Err(fail(Problem::NoName));
    }
    let fields: &[(String, Value)] = match payload {
        Value::Object(fields) => fields,
        Value::Null => &[],
        other => return Err(fail(Problem::NotAnObject { got: other.kind() })),
    };
    let kind = Kind::from_name(name);
    let mut r = Reader {
        event: kind.map_or(name, |k| k.name()),
        prefix: String::new(),
        fields,
        warnings: Vec::new(),
    };
    let event_id = r.text("event_id");
    let event = read_event(kind, name, &mut r).map_err(fail)?;
    Ok(Parsed {
        event,
        event_id,
        warnings: r.warnings,
    })
}

fn read_event(kind: Option<Kind>, name: &str, r: &mut Reader<'_>) -> Result<SallaEvent, Problem> {
    use SallaEvent as E;
    let Some(kind) = kind else {
        return Ok(E::Custom(Custom {
            name: truncate(name, limits::DESCRIPTION).to_owned(),
            properties: r.scalars(),
        }));
    };
    Ok(match kind {
        Kind::ProductViewed => E::ProductViewed(Product {
            product_id: r.required_text("product_id")?,
            name: r.text("name"),
            category: r.text("category"),
            brand: r.text("brand"),
            url: r.text("url"),
            sku: r.text("sku"),
            currency: r.text("currency"),
            price: r.number("price").or_else(|| r.number("value")),
        }),
        Kind::ProductAdded => E::ProductAdded(r.cart_item()?),
        Kind::ProductRemoved => E::ProductRemoved(r.cart_item()?),
        Kind::WishlistProductAddedToCart => E::WishlistProductAddedToCart(r.cart_item()?),
        Kind::CartViewed => E::CartViewed(r.cart_snapshot()),
        Kind::CartUpdated => E::CartUpdated(r.cart_snapshot()),
        Kind::CheckoutStarted => E::CheckoutStarted(r.cart_snapshot()),
        Kind::OrderCompleted => E::OrderCompleted(Order {
            order_id: r.text("order_id"),
            lines: r.lines("products"),
            total: r
                .number("total")
                .or_else(|| r.number("revenue"))
                .or_else(|| r.number("value")),
            currency: r.text("currency"),
            coupon: r.text("coupon"),
            shipping: r.number("shipping"),
            tax: r.number("tax"),
            discount: r.number("discount"),
        }),
        Kind::SignedIn => E::SignedIn(Account {
            email: r.text("email"),
        }),
        Kind::SignedUp => E::SignedUp(Account {
            email: r.text("email"),
        }),
        Kind::SignedOut => E::SignedOut,
        Kind::PromotionViewed => E::PromotionViewed(r.promotion()?),
        Kind::PromotionClicked => E::PromotionClicked(r.promotion()?),
        Kind::CouponApplied => E::CouponApplied(r.coupon()),
        Kind::CouponRemoved => E::CouponRemoved(r.coupon()),
        Kind::CouponDenied => E::CouponDenied(r.coupon()),
        Kind::ProductAddedToWishlist => E::ProductAddedToWishlist(r.wishlist_item()?),
        Kind::ProductRemovedFromWishlist => E::ProductRemovedFromWishlist(r.wishlist_item()?),
        Kind::ProductsSearched => E::ProductsSearched(Search {
            query: r.required_text("query")?,
            total_results: r.number("total_results"),
        }),
        Kind::ProductShared => E::ProductShared(Shared {
            product_id: r.required_text("product_id")?,
            share_via: r.text("share_via"),
        }),
        Kind::ProductReviewed => E::ProductReviewed(Review {
            product_id: r.required_text("product_id")?,
            rating: r.text("rating"),
            review_body: r.text("review_body"),
        }),
        Kind::ProductListViewed => E::Quiet(Quiet::ProductListViewed),
        Kind::ProductListFiltered => E::Quiet(Quiet::ProductListFiltered),
        Kind::ProductClicked => E::Quiet(Quiet::ProductClicked),
        Kind::RecommendationListViewed => E::Quiet(Quiet::RecommendationListViewed),
        Kind::ProductReordered => E::Quiet(Quiet::ProductReordered),
        Kind::UserProfileUpdated => E::Quiet(Quiet::UserProfileUpdated),
        Kind::MarketSelected => E::Quiet(Quiet::MarketSelected),
        Kind::Page => E::Page(Page {
            name: r.text("name"),
            referrer: r.text("referrer"),
        }),
    })
}

/// Reads fields of one payload object, collecting warnings for unusable ones.
struct Reader<'a> {
    event: &'a str,
    /// `products[2].` while reading a line; empty at the top level.
    prefix: String,
    fields: &'a [(String, Value)],
    warnings: Vec<Warning>,
}

/// A short, safe rendering of a bad value for a warning: never the whole of a 1 MB string.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let short = truncate(s, 40);
            let more = if short.len() < s.len() { "…" } else { "" };
            let mut out = String::from("\"");
            out.push_str(short);
            out.push_str(more);
            out.push('"');
            out
        }
        Value::Bool(b) => (if *b { "true" } else { "false" }).to_owned(),
        other => other.kind().to_owned(),
    }
}

/// A finite number as text: whole numbers (ids) in full, others with at most two decimals.
fn number_text(n: f64) -> Option<String> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        let mut s = String::new();
        if n < 0.0 {
            s.push('-');
        }
        number::push_uint(n.abs() as u64, &mut s);
        return Some(s);
    }
    let s = number::format(n);
    (!s.is_empty()).then_some(s)
}

impl<'a> Reader<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    fn warn(&mut self, key: &str, expected: &'static str, got: &Value) {
        let mut field = self.prefix.clone();
        field.push_str(key);
        self.warnings.push(Warning {
            event: self.event.to_owned(),
            field,
            expected,
            got: describe(got),
        });
    }

    /// Text, or a number written as text. Empty text reads as missing.
    fn text(&mut self, key: &str) -> Option<String> {
        let v = self.get(key)?;
        let text = match v {
            Value::String(s) => Some(truncate(s.trim(), limits::KEEP_TEXT).to_owned()),
            Value::Number(n) => number_text(*n),
            _ => None,
        };
        if text.is_none() {
            self.warn(key, "text", v);
        }
        text.filter(|t| !t.is_empty())
    }

    fn required_text(&mut self, key: &'static str) -> Result<String, Problem> {
        match self.get(key) {
            None => Err(Problem::MissingField { field: key }),
            Some(v) => {
                let before = self.warnings.len();
                match self.text(key) {
                    Some(t) => Ok(t),
                    None if self.warnings.len() > before => {
                        self.warnings.truncate(before);
                        Err(Problem::WrongType {
                            field: key,
                            expected: "text",
                            got: describe(v),
                        })
                    }
                    None => Err(Problem::MissingField { field: key }),
                }
            }
        }
    }

    /// A finite number, or text that reads as one.
    fn number(&mut self, key: &str) -> Option<f64> {
        let v = self.get(key)?;
        let n = match v {
            Value::Number(n) if n.is_finite() => Some(*n),
            Value::String(s) if s.trim().is_empty() => return None,
            Value::String(s) => number::parse(s),
            _ => None,
        };
        if n.is_none() {
            self.warn(key, "a number", v);
        }
        n
    }

    /// A quantity: a positive number; `None` where missing or unusable.
    fn quantity(&mut self) -> Option<f64> {
        match self.number("quantity") {
            Some(q) if q > 0.0 => Some(q),
            Some(q) => {
                self.warn("quantity", "a positive number", &Value::Number(q));
                None
            }
            None => None,
        }
    }

    fn line(&mut self) -> Result<Line, Problem> {
        Ok(Line {
            product_id: self.required_text("product_id")?,
            name: self.text("name"),
            quantity: self.quantity().unwrap_or(1.0),
            price: self.number("price"),
        })
    }

    /// `products[]`: lines without a usable `product_id` are left out, with a warning.
    fn lines(&mut self, key: &str) -> Vec<Line> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        let Value::Array(items) = v else {
            self.warn(key, "an array", v);
            return Vec::new();
        };
        let mut lines = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let mut prefix = String::from(key);
            prefix.push('[');
            number::push_uint(i as u64, &mut prefix);
            prefix.push_str("].");
            let Value::Object(fields) = item else {
                self.warnings.push(Warning {
                    event: self.event.to_owned(),
                    field: prefix.trim_end_matches('.').to_owned(),
                    expected: "an object",
                    got: describe(item),
                });
                continue;
            };
            let mut sub = Reader {
                event: self.event,
                prefix,
                fields,
                warnings: Vec::new(),
            };
            let line = sub.line();
            if let Err(problem) = &line {
                let got = match problem {
                    Problem::WrongType { got, .. } => got.clone(),
                    _ => "nothing".to_owned(),
                };
                sub.warnings.push(Warning {
                    event: self.event.to_owned(),
                    field: [sub.prefix.as_str(), "product_id"].concat(),
                    expected: "a product id (the line was left out)",
                    got,
                });
            }
            self.warnings.append(&mut sub.warnings);
            lines.extend(line.ok());
        }
        lines
    }

    fn cart_item(&mut self) -> Result<CartItem, Problem> {
        Ok(CartItem {
            cart_id: self.text("cart_id"),
            product_id: self.required_text("product_id")?,
            name: self.text("name"),
            price: self.number("price"),
            quantity: self.quantity(),
            currency: self.text("currency"),
            coupon: self.text("coupon"),
        })
    }

    fn cart_snapshot(&mut self) -> CartSnapshot {
        let lines = self.lines("products");
        let first = |key: &str| {
            let Some(Value::Array(items)) = self.get("products") else {
                return None;
            };
            items.iter().find_map(|item| match item.get(key) {
                Some(Value::String(s)) if !s.trim().is_empty() => {
                    Some(truncate(s.trim(), limits::KEEP_TEXT).to_owned())
                }
                _ => None,
            })
        };
        let currency_of_first = first("currency");
        let coupon_of_first = first("coupon");
        CartSnapshot {
            cart_id: self.text("cart_id"),
            checkout_id: self.text("checkout_id"),
            lines,
            value: self.number("value"),
            currency: self.text("currency").or(currency_of_first),
            coupon: self.text("coupon").or(coupon_of_first),
        }
    }

    fn promotion(&mut self) -> Result<Promotion, Problem> {
        Ok(Promotion {
            promotion_id: self.required_text("promotion_id")?,
            name: self.text("name"),
            creative: self.text("creative"),
            position: self.text("position"),
        })
    }

    fn coupon(&mut self) -> Coupon {
        Coupon {
            cart_id: self.text("cart_id"),
            coupon_name: self
                .text("coupon_name")
                .or_else(|| self.text("coupon_code")),
            discount: self.number("discount"),
            reason: self.text("reason"),
        }
    }

    fn wishlist_item(&mut self) -> Result<WishlistItem, Problem> {
        Ok(WishlistItem {
            product_id: self.required_text("product_id")?,
            name: self.text("name"),
            price: self.number("price"),
            wishlist_id: self.text("wishlist_id"),
        })
    }

    /// Scalar properties as text, in key order, for custom events.
    fn scalars(&mut self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter(|(k, _)| k != "event_id")
            .filter_map(|(k, v)| {
                let text = match v {
                    Value::String(s) => truncate(s.trim(), limits::DETAIL).to_owned(),
                    Value::Number(n) => number_text(*n)?,
                    Value::Bool(b) => (if *b { "true" } else { "false" }).to_owned(),
                    _ => return None,
                };
                Some((truncate(k, limits::DETAIL).to_owned(), text))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::testing::val;

    #[test]
    fn names_match_either_wishlist_spelling_and_any_case() {
        assert_eq!(
            Kind::from_name("Wishlist Product Added"),
            Some(Kind::ProductAddedToWishlist)
        );
        assert_eq!(
            Kind::from_name("Product Added to Wishlist"),
            Some(Kind::ProductAddedToWishlist)
        );
        assert_eq!(
            Kind::from_name("wishlist product removed"),
            Some(Kind::ProductRemovedFromWishlist)
        );
        assert_eq!(
            Kind::from_name(" product viewed "),
            Some(Kind::ProductViewed)
        );
        assert_eq!(Kind::from_name("Product Viewedx"), None);
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(*k));
        }
    }

    #[test]
    fn prices_as_strings_and_ids_as_numbers() {
        let p = parse(
            "Product Viewed",
            &val!({"product_id": 1001, "price": "250.50", "name": "عطر", "event_id": "e1"}),
        )
        .unwrap();
        assert_eq!(p.event_id.as_deref(), Some("e1"));
        assert!(p.warnings.is_empty());
        let SallaEvent::ProductViewed(product) = p.event else {
            panic!("{:?}", p.event)
        };
        assert_eq!(product.product_id, "1001");
        assert_eq!(product.price, Some(250.5));
        assert_eq!(product.name.as_deref(), Some("عطر"));
    }

    #[test]
    fn unusable_optional_fields_are_left_out_with_a_named_warning() {
        let p = parse(
            "Product Added",
            &val!({"product_id": "1", "price": "abc", "quantity": {"x": 1}, "name": ["a"]}),
        )
        .unwrap();
        let msgs: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "`name` must be text, got an array in Product Added; sent without it",
                "`price` must be a number, got \"abc\" in Product Added; sent without it",
                "`quantity` must be a number, got an object in Product Added; sent without it",
            ]
        );
        let SallaEvent::ProductAdded(item) = p.event else {
            panic!()
        };
        assert_eq!(item.quantity, None);
        assert_eq!(item.price, None);
    }

    #[test]
    fn required_fields_give_typed_errors() {
        let e = parse("Product Viewed", &val!({"name": "x"})).unwrap_err();
        assert_eq!(
            e.problem,
            Problem::MissingField {
                field: "product_id"
            }
        );
        assert_eq!(
            e.to_string(),
            "Product Viewed was not sent: `product_id` is missing"
        );
        let e = parse("Promotion Viewed", &val!({"promotion_id": {"a": 1}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Promotion Viewed was not sent: `promotion_id` must be text, got an object"
        );
        let e = parse("Product Viewed", &val!({"product_id": "  "})).unwrap_err();
        assert!(matches!(e.problem, Problem::MissingField { .. }));
        let e = parse("Cart Viewed", &val!("a string")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Cart Viewed was not sent: its payload must be an object, got a string"
        );
        assert_eq!(
            parse("  ", &Value::Null).unwrap_err().problem,
            Problem::NoName
        );
    }

    #[test]
    fn null_payload_reads_as_empty() {
        assert_eq!(
            parse("Signed Out", &Value::Null).unwrap().event,
            SallaEvent::SignedOut
        );
    }

    #[test]
    fn bad_lines_are_left_out_and_named() {
        let p = parse(
            "Cart Viewed",
            &val!({"cart_id": 9, "products": [
                {"product_id": "1", "quantity": "2", "price": 10},
                {"name": "no id"},
                "junk",
                {"product_id": "3", "quantity": -1}
            ]}),
        )
        .unwrap();
        let SallaEvent::CartViewed(cart) = &p.event else {
            panic!()
        };
        assert_eq!(cart.cart_id.as_deref(), Some("9"));
        assert_eq!(
            cart.lines
                .iter()
                .map(|l| l.product_id.as_str())
                .collect::<Vec<_>>(),
            ["1", "3"]
        );
        assert_eq!(cart.lines[0].quantity, 2.0);
        assert_eq!(cart.lines[1].quantity, 1.0);
        let fields: Vec<&str> = p.warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "products[1].product_id",
                "products[2]",
                "products[3].quantity"
            ]
        );
    }

    #[test]
    fn huge_strings_are_kept_to_the_largest_field_limit() {
        let huge = "ع".repeat(1_000_000);
        let p = parse(
            "Product Viewed",
            &Value::object([
                ("product_id", Value::from("1")),
                ("name", Value::from(huge.as_str())),
            ]),
        )
        .unwrap();
        let SallaEvent::ProductViewed(product) = p.event else {
            panic!()
        };
        assert_eq!(product.name.unwrap().chars().count(), limits::KEEP_TEXT);
    }

    #[test]
    fn nan_and_infinity_are_never_numbers() {
        let p = parse(
            "Order Completed",
            &Value::object([
                ("total", Value::Number(f64::NAN)),
                ("revenue", Value::Number(f64::INFINITY)),
                ("value", Value::from("12")),
            ]),
        )
        .unwrap();
        let SallaEvent::OrderCompleted(order) = p.event else {
            panic!()
        };
        assert_eq!(
            order.total,
            Some(12.0),
            "falls through to the first usable amount"
        );
        assert_eq!(p.warnings.len(), 2);
        assert!(p.warnings[0].to_string().contains("got NaN"));
    }

    #[test]
    fn custom_events_keep_scalars_in_key_order() {
        let p = parse(
            "Loyalty Points Redeemed",
            &Value::object([
                ("points", Value::Number(120.0)),
                ("event_id", Value::from("e")),
                ("tier", Value::from("gold")),
                ("nested", val!({"a": 1})),
                ("first", Value::Bool(true)),
            ]),
        )
        .unwrap();
        assert_eq!(
            p.event,
            SallaEvent::Custom(Custom {
                name: "Loyalty Points Redeemed".into(),
                properties: vec![
                    ("points".into(), "120".into()),
                    ("tier".into(), "gold".into()),
                    ("first".into(), "true".into()),
                ],
            })
        );
        assert_eq!(p.event.name(), "Loyalty Points Redeemed");
    }
}
