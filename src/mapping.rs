//! Salla event → SALESmanago external event: the table of `docs/mapping.md` §2.
//!
//! [`map`] is pure: the event, the held cart (already updated by this event), the configuration
//! and the environment (time, shop) go in; a [`ContactEvent`] to send, or the reason for sending
//! nothing, comes out. The type comes from the table unless the configuration overrides it; the
//! fields always follow the event's own row, so an override changes what SALESmanago files the
//! event under, not what it says.

use crate::cart::{self, Cart};
use crate::config::{Config, Override};
use crate::number;
use crate::salesmanago::{join_list, limits, ContactEvent, ExternalEventType as T};
use crate::salla::{Line, SallaEvent};
use crate::words;
use std::fmt;

/// What the mapping needs to know about the page and the moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env<'a> {
    /// When the event happened, ms since the epoch.
    pub now_ms: u64,
    /// The storefront's host, sent as `shopDomain`.
    pub shop_domain: Option<&'a str>,
    /// Salla's store id, the `location` when the configuration sets none.
    pub store_id: Option<&'a str>,
}

/// What to do with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send this event.
    Send(ContactEvent),
    /// Send nothing.
    Skip(Skip),
}

/// Why an event is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The configuration's `events` switched it off.
    SwitchedOff,
    /// The event is off by default (noise for SALESmanago) and not switched on.
    OffByDefault,
    /// A custom event while `customEvents` is off.
    CustomEventsOff,
}

impl Skip {
    /// Why, for the merchant.
    pub fn reason(self) -> &'static str {
        match self {
            Skip::SwitchedOff => words::SWITCHED_OFF,
            Skip::OffByDefault => words::OFF_BY_DEFAULT,
            Skip::CustomEventsOff => words::CUSTOM_EVENTS_OFF,
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// What a row of the table does with its event unless the configuration says otherwise.
#[derive(Debug, Clone, Copy)]
enum ByDefault {
    /// Sent as this type.
    Sent(T),
    /// Not sent, for this reason; sent as this type when switched on with `true`.
    Skipped(Skip, T),
}

/// Maps one event. `cart` is the held cart after this event was applied to it.
pub fn map(event: &SallaEvent, cart: &Cart, config: &Config, env: &Env<'_>) -> Decision {
    // The row fills the event before the configuration has its say: the type is the only thing
    // an override changes, and a skipped event costs a few strings, not a second table.
    let mut out = ContactEvent::new(T::Other, env.now_ms);
    let by_default = row(event, cart, config, &mut out);
    let event_type = match (config.override_for(event.kind(), event.name()), by_default) {
        (Some(Override::Off), _) => return Decision::Skip(Skip::SwitchedOff),
        (Some(Override::As(t)), _) => t,
        (Some(Override::On), ByDefault::Sent(t) | ByDefault::Skipped(_, t)) => t,
        (None, ByDefault::Sent(t)) => t,
        (None, ByDefault::Skipped(reason, _)) => return Decision::Skip(reason),
    };
    out.set_event_type(event_type);
    out.set_description(event.name());
    if let Some(location) = config.location.as_deref().or(env.store_id) {
        out.set_location(location);
    }
    if let Some(domain) = env.shop_domain {
        out.set_shop_domain(domain);
    }
    Decision::Send(out)
}

/// Whether a cart event (see [`Cart::id_after`]) is sent as a CART, its row's type, which the
/// configuration may change. Its fields follow the held cart alone: mapped later against the same
/// cart, it says the same, so the pipeline may hold it back until the cart's last change of a
/// slice (see [`crate::pipeline::Pipeline::release`]).
pub fn stays_cart(event: &SallaEvent, config: &Config) -> bool {
    matches!(
        config.override_for(event.kind(), event.name()),
        None | Some(Override::On | Override::As(T::Cart))
    )
}

/// The table of `docs/mapping.md` §2, one arm per row: how the event's own fields fill, and the
/// type it is sent as unless the configuration says otherwise.
fn row(event: &SallaEvent, cart: &Cart, config: &Config, out: &mut ContactEvent) -> ByDefault {
    use ByDefault::{Sent, Skipped};
    use SallaEvent as E;
    let name = Some(event.name());
    match event {
        E::ProductViewed(p) => {
            out.set_products(&[p.product_id.as_str()]);
            out.set_value(p.price);
            out.set_details(&[
                p.name.as_deref(),
                p.category.as_deref(),
                p.brand.as_deref(),
                p.url.as_deref(),
                p.sku.as_deref(),
                p.currency.as_deref(),
            ]);
            Sent(T::Visit)
        }
        E::ProductAdded(_)
        | E::ProductRemoved(_)
        | E::WishlistProductAddedToCart(_)
        | E::CartViewed(_)
        | E::CartUpdated(_)
        | E::CheckoutStarted(_) => {
            set_lines(out, &cart.lines);
            out.set_value(Some(cart.value()));
            if let Some(id) = &cart.id {
                out.set_external_id(id);
            }
            let [names, quantities, prices] = line_lists(&cart.lines);
            out.set_details(&[
                names.as_deref(),
                quantities.as_deref(),
                prices.as_deref(),
                cart.currency.as_deref(),
                cart.coupon.as_deref(),
            ]);
            Sent(T::Cart)
        }
        E::OrderCompleted(order) => {
            // An order that lists no products is the cart that was just checked out.
            let lines = if order.lines.is_empty() {
                &cart.lines
            } else {
                &order.lines
            };
            set_lines(out, lines);
            out.set_value(order.total.or_else(|| cart::priced_sum(lines)));
            if let Some(id) = &order.order_id {
                out.set_external_id(id);
            }
            let [names, quantities, prices] = line_lists(lines);
            out.set_details(&[
                names.as_deref(),
                quantities.as_deref(),
                prices.as_deref(),
                order.currency.as_deref().or(cart.currency.as_deref()),
                order.coupon.as_deref().or(cart.coupon.as_deref()),
                amount(order.shipping).as_deref(),
                amount(order.tax).as_deref(),
                amount(order.discount).as_deref(),
            ]);
            Sent(T::Purchase)
        }
        E::SignedIn(_) | E::SignedUp(_) => {
            out.set_details(&[name]);
            Sent(T::Login)
        }
        // Signed Out makes the pipeline forget the email; it is sent only when switched on.
        E::SignedOut | E::Quiet(_) => {
            out.set_details(&[name]);
            Skipped(Skip::OffByDefault, T::Other)
        }
        E::PromotionViewed(p) | E::PromotionClicked(p) => {
            out.set_external_id(&p.promotion_id);
            out.set_details(&[
                p.name.as_deref(),
                p.creative.as_deref(),
                p.position.as_deref(),
                name,
            ]);
            Sent(T::Offer)
        }
        E::CouponApplied(c) | E::CouponRemoved(c) | E::CouponDenied(c) => {
            out.set_value(c.discount);
            if let Some(id) = c.cart_id.as_ref().or(cart.id.as_ref()) {
                out.set_external_id(id);
            }
            out.set_details(&[name, c.coupon_name.as_deref(), c.reason.as_deref()]);
            Sent(T::Other)
        }
        E::ProductAddedToWishlist(w) | E::ProductRemovedFromWishlist(w) => {
            out.set_products(&[w.product_id.as_str()]);
            out.set_value(w.price);
            out.set_details(&[name, w.name.as_deref(), w.wishlist_id.as_deref()]);
            Sent(T::Other)
        }
        E::ProductsSearched(s) => {
            out.set_details(&[
                name,
                Some(s.query.as_str()),
                amount(s.total_results).as_deref(),
            ]);
            Sent(T::Other)
        }
        E::ProductShared(s) => {
            out.set_products(&[s.product_id.as_str()]);
            out.set_details(&[name, s.share_via.as_deref()]);
            Sent(T::Other)
        }
        E::ProductReviewed(r) => {
            out.set_products(&[r.product_id.as_str()]);
            out.set_details(&[name, r.rating.as_deref(), r.review_body.as_deref()]);
            Sent(T::Other)
        }
        // SALESmanago's own script records visits; Salla's are for a merchant who asks.
        E::Page(p) => {
            out.set_details(&[p.name.as_deref(), p.referrer.as_deref()]);
            Skipped(Skip::OffByDefault, T::Visit)
        }
        E::Custom(c) => {
            // Loops, not map/collect/extend: ~350 B less of the wasm.
            let mut properties = Vec::with_capacity(c.properties.len());
            for (k, v) in &c.properties {
                properties.push(words::cat(&[k, "=", v]));
            }
            let mut details = vec![name];
            for p in &properties {
                details.push(Some(p.as_str()));
            }
            out.set_details(&details);
            if config.custom_events {
                Sent(T::Other)
            } else {
                Skipped(Skip::CustomEventsOff, T::Other)
            }
        }
    }
}

/// A detail that is a number: amounts with at most two decimals.
fn amount(n: Option<f64>) -> Option<String> {
    n.map(number::format).filter(|s| !s.is_empty())
}

/// The per-line lists of a cart or order: names, quantities, prices. A list whose every entry
/// is empty is left out; otherwise empty entries keep their place, so the n-th entry of each
/// list still describes the n-th product.
fn line_lists(lines: &[Line]) -> [Option<String>; 3] {
    let list = |items: Vec<&str>| {
        if items.iter().all(|i| i.is_empty()) {
            None
        } else {
            Some(join_list(&items, limits::DETAIL))
        }
    };
    [
        list({
            let mut names = Vec::with_capacity(lines.len());
            for l in lines {
                names.push(l.name.as_deref().unwrap_or_default());
            }
            names
        }),
        amounts(lines, |l| Some(l.quantity)),
        amounts(lines, |l| l.price),
    ]
}

/// A list of amounts, one per line (empty where a line has none), as [`join_list`] makes it
/// within a detail's limit, written straight into one string: amounts have nothing to clean
/// (no spaces, no commas) and are ASCII, so each line costs no string of its own. `None` when
/// no line has one.
///
/// `value` is a plain function, not an iterator behind `dyn`: each iterator type would bring its
/// whole vtable into the wasm.
fn amounts(lines: &[Line], value: fn(&Line) -> Option<f64>) -> Option<String> {
    let (mut out, mut any, mut full) = (String::new(), false, false);
    for (i, line) in lines.iter().enumerate() {
        let value = value(line).and_then(number::round2);
        any |= value.is_some();
        if full {
            continue;
        }
        let at = out.len();
        if i > 0 {
            out.push(',');
        }
        if let Some(v) = value {
            number::push_json(v, &mut out);
        }
        if out.len() > limits::DETAIL {
            out.truncate(at);
            full = true;
        }
    }
    any.then_some(out)
}

fn set_lines(out: &mut ContactEvent, lines: &[Line]) {
    let mut ids = Vec::with_capacity(lines.len());
    for l in lines {
        ids.push(l.product_id.as_str());
    }
    out.set_products(&ids);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lists as they were made before `amounts`: each amount formatted, then joined.
    fn joined(values: &[Option<f64>]) -> Option<String> {
        let items: Vec<String> = values
            .iter()
            .map(|v| v.map(number::format).unwrap_or_default())
            .collect();
        if items.iter().all(String::is_empty) {
            return None;
        }
        Some(join_list(
            &items.iter().map(String::as_str).collect::<Vec<_>>(),
            limits::DETAIL,
        ))
    }

    #[test]
    fn amount_lists_are_what_joining_the_formatted_amounts_made() {
        let many: Vec<Option<f64>> = (0..300).map(|i| Some(1000.5 + f64::from(i))).collect();
        let late: Vec<Option<f64>> = (0..300).map(|i| (i == 299).then_some(5.0)).collect();
        let cases: [&[Option<f64>]; 9] = [
            &[],
            &[None, None],
            &[Some(1.0), None, Some(2.5)],
            &[None, Some(0.005), Some(-3.25)],
            &[Some(f64::NAN), Some(f64::INFINITY), Some(1e300)],
            &[Some(10.0), Some(f64::NAN)],
            &[Some(12.345678), Some(1e15)],
            &many,
            &late,
        ];
        for values in cases {
            let lines: Vec<Line> = values
                .iter()
                .map(|&price| Line {
                    product_id: "1".into(),
                    name: None,
                    quantity: 1.0,
                    price,
                })
                .collect();
            assert_eq!(amounts(&lines, |l| l.price), joined(values), "{values:?}");
        }
    }
}
