//! The typed payloads of the catalog's events, and how each is read from Salla's data
//! (`docs/mapping.md` §2, "Reading payloads").
//!
//! Each type says which fields it takes and which it cannot be sent without; the leniency itself
//! (numbers as text, empty text as missing, warnings) is the [`Reader`]'s.

use super::error::Problem;
use super::reader::Reader;
use crate::salesmanago::{limits, truncate};

/// A payload type of the catalog: how its fields are read from one event's payload.
pub(super) trait Payload: Sized {
    /// Reads the payload; an `Err` names the field the event cannot be sent without.
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem>;
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

impl Payload for Product {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(Product {
            product_id: r.required_text("product_id")?,
            name: r.text("name"),
            category: r.text("category"),
            brand: r.text("brand"),
            url: r.text("url"),
            sku: r.text("sku"),
            currency: r.text("currency"),
            price: r.number("price").or_else(|| r.number("value")),
        })
    }
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

impl Payload for Line {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(Line {
            product_id: r.required_text("product_id")?,
            name: r.text("name"),
            quantity: r.quantity().unwrap_or(1.0),
            price: r.number("price"),
        })
    }
}

/// `products[]`: lines without a usable `product_id` are left out, with a warning.
fn lines(r: &mut Reader<'_>) -> Vec<Line> {
    r.objects(
        "products",
        "a product id (the line was left out)",
        Line::read,
    )
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

impl Payload for CartItem {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(CartItem {
            cart_id: r.text("cart_id"),
            product_id: r.required_text("product_id")?,
            name: r.text("name"),
            price: r.number("price"),
            quantity: r.quantity(),
            currency: r.text("currency"),
            coupon: r.text("coupon"),
        })
    }
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

impl Payload for CartSnapshot {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        let lines = lines(r);
        let currency_of_first = r.first_text_in("products", "currency");
        let coupon_of_first = r.first_text_in("products", "coupon");
        Ok(CartSnapshot {
            cart_id: r.text("cart_id"),
            checkout_id: r.text("checkout_id"),
            lines,
            value: r.number("value"),
            currency: r.text("currency").or(currency_of_first),
            coupon: r.text("coupon").or(coupon_of_first),
        })
    }
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

impl Payload for Order {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(Order {
            order_id: r.text("order_id"),
            lines: lines(r),
            total: r
                .number("total")
                .or_else(|| r.number("revenue"))
                .or_else(|| r.number("value")),
            currency: r.text("currency"),
            coupon: r.text("coupon"),
            shipping: r.number("shipping"),
            tax: r.number("tax"),
            discount: r.number("discount"),
        })
    }
}

/// Signed In, Signed Up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Account {
    /// `email`, as sent (checked where it is used).
    pub email: Option<String>,
    /// `first_name`.
    pub first_name: Option<String>,
    /// `last_name`.
    pub last_name: Option<String>,
    /// `mobile`: the national number (or the whole number with `+`).
    pub mobile: Option<String>,
    /// `mobile_code`, when the payload has it (Salla's user record does; the event's documented
    /// fields do not).
    pub mobile_code: Option<String>,
}

impl Payload for Account {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(Account {
            email: r.text("email"),
            first_name: r.text("first_name"),
            last_name: r.text("last_name"),
            mobile: r.text("mobile"),
            mobile_code: r.text("mobile_code"),
        })
    }
}

impl Account {
    /// The shopper it names, each field checked ([`crate::contact::Shopper`]).
    pub fn shopper(&self) -> crate::contact::Shopper {
        crate::contact::Shopper::from_salla(crate::contact::SallaUser {
            email: self.email.as_deref(),
            first_name: self.first_name.as_deref(),
            last_name: self.last_name.as_deref(),
            mobile: self.mobile.as_deref(),
            mobile_code: self.mobile_code.as_deref(),
        })
    }
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

impl Payload for Promotion {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(Promotion {
            promotion_id: r.required_text("promotion_id")?,
            name: r.text("name"),
            creative: r.text("creative"),
            position: r.text("position"),
        })
    }
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

impl Payload for Coupon {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(Coupon {
            cart_id: r.text("cart_id"),
            coupon_name: r.text("coupon_name").or_else(|| r.text("coupon_code")),
            discount: r.number("discount"),
            reason: r.text("reason"),
        })
    }
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

impl Payload for WishlistItem {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(WishlistItem {
            product_id: r.required_text("product_id")?,
            name: r.text("name"),
            price: r.number("price"),
            wishlist_id: r.text("wishlist_id"),
        })
    }
}

/// Products Searched.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Search {
    /// `query`.
    pub query: String,
    /// `total_results`.
    pub total_results: Option<f64>,
}

impl Payload for Search {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(Search {
            query: r.required_text("query")?,
            total_results: r.number("total_results"),
        })
    }
}

/// Product Shared.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shared {
    /// `product_id`.
    pub product_id: String,
    /// `share_via`.
    pub share_via: Option<String>,
}

impl Payload for Shared {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(Shared {
            product_id: r.required_text("product_id")?,
            share_via: r.text("share_via"),
        })
    }
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

impl Payload for Review {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(Review {
            product_id: r.required_text("product_id")?,
            rating: r.text("rating"),
            review_body: r.text("review_body"),
        })
    }
}

/// Salla's `page()` call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// `name` (the page slug).
    pub name: Option<String>,
    /// `referrer`.
    pub referrer: Option<String>,
}

impl Payload for Page {
    fn read(r: &mut Reader<'_>) -> Result<Self, Problem> {
        Ok(Page {
            name: r.text("name"),
            referrer: r.text("referrer"),
        })
    }
}

/// An event name outside the catalog (a custom event from `Salla.analytics.track`).
#[derive(Debug, Clone, PartialEq)]
pub struct Custom {
    /// The name as received.
    pub name: String,
    /// Its scalar properties (text, numbers, booleans) as text, in key order; `event_id` excluded.
    pub properties: Vec<(String, String)>,
}

impl Custom {
    /// A custom event keeps its name (cut to what SALESmanago's `description` holds) and its
    /// scalar properties; nothing is required of it.
    pub(super) fn read(name: &str, r: &mut Reader<'_>) -> Custom {
        Custom {
            name: truncate(name, limits::DESCRIPTION).to_owned(),
            properties: r.scalars(),
        }
    }
}
