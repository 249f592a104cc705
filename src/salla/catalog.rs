//! The catalog: every Salla event the tracker knows, in one table (`docs/mapping.md` §2).
//!
//! A row names the event's variant, the payload type it is read into, and every name it may
//! arrive under (the first is canonical). From the table, [`catalog!`] writes [`Kind`] (the
//! names), [`SallaEvent`] (the typed events), [`Quiet`] and the dispatch from a name to its
//! payload reader, so that no list of events is written twice. How a payload is read lives with
//! its type in `payload`; what an event becomes in SALESmanago lives in `mapping`.

use super::error::Problem;
use super::payload::{
    Account, CartItem, CartSnapshot, Coupon, Custom, Order, Page, Payload, Product, Promotion,
    Review, Search, Shared, WishlistItem,
};
use super::reader::Reader;

/// Writes the catalog's types from its table.
///
/// Rows of `events` become variants of [`SallaEvent`], with their payload when they name one.
/// Rows of `quiet` are the quiet events: they carry nothing, share one variant
/// ([`SallaEvent::Quiet`]) and so share one mapping row (off unless configured on).
macro_rules! catalog {
    (
        events {
            $( $variant:ident $( ($payload:ty) )? => $name:literal $(| $alias:literal)*, )+
        }
        quiet {
            $( $quiet:ident => $quiet_name:literal $(| $quiet_alias:literal)*, )+
        }
    ) => {
        /// Every event name of the catalog, plus `page` (Salla's `page()` call).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $( #[doc = $name] $variant, )+
            $( #[doc = $quiet_name] $quiet, )+
        }

        impl Kind {
            /// Every catalog event.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)+ $(Kind::$quiet,)+];

            /// Every name a catalog event may arrive under, both wishlist spellings included.
            pub const NAMES: &'static [&'static str] = &[
                $($name, $($alias,)*)+
                $($quiet_name, $($quiet_alias,)*)+
            ];

            /// [`Kind::NAMES`] as one text, each name followed by a comma: what the page's
            /// `addEventListener` calls are given at start-up, without joining them there, and
            /// the one copy of the names in the wasm ([`Kind::name`] and [`Kind::from_name`]
            /// read them out of it by index).
            pub const NAMES_LISTED: &'static str = concat!(
                $($name, ",", $($alias, ",",)*)+
                $($quiet_name, ",", $($quiet_alias, ",",)*)+
            );

            /// The canonical name (for the wishlist events, the spelling Salla's storefront emits).
            pub fn name(self) -> &'static str {
                listed(CANONICAL[self as usize] as usize)
            }

            /// The catalog event called `name`, in any of its spellings, ignoring ASCII case
            /// and surrounding white space.
            pub fn from_name(name: &str) -> Option<Kind> {
                let name = name.trim();
                let at = (0..KIND_OF_NAME.len()).find(|&at| listed(at).eq_ignore_ascii_case(name))?;
                Some(KIND_OF_NAME[at])
            }
        }

        /// The kind each of [`Kind::NAMES`] names, at the same index.
        const KIND_OF_NAME: &[Kind] = &[
            $(Kind::$variant, $(alias!($alias, Kind::$variant),)*)+
            $(Kind::$quiet, $(alias!($quiet_alias, Kind::$quiet),)*)+
        ];

        /// Catalog events SALESmanago gets nothing useful from; off unless configured on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Quiet {
            $( #[doc = $quiet_name] $quiet, )+
        }

        /// A Salla event, typed.
        #[derive(Debug, Clone, PartialEq)]
        pub enum SallaEvent {
            $( #[doc = $name] $variant $( ($payload) )?, )+
            /// A quiet event: the catalog knows it, SALESmanago does not want it by default.
            Quiet(Quiet),
            /// Any name outside the catalog.
            Custom(Custom),
        }

        impl SallaEvent {
            /// The catalog kind; `None` for a custom event.
            pub fn kind(&self) -> Option<Kind> {
                Some(match self {
                    $( SallaEvent::$variant $( (any!($payload)) )? => Kind::$variant, )+
                    $( SallaEvent::Quiet(Quiet::$quiet) => Kind::$quiet, )+
                    SallaEvent::Custom(_) => return None,
                })
            }
        }

        /// Reads the payload of the catalog event `kind`.
        pub(super) fn read(kind: Kind, r: &mut Reader<'_>) -> Result<SallaEvent, Problem> {
            match kind {
                $( Kind::$variant => arm!(r, $variant $(, $payload)?), )+
                $( Kind::$quiet => Ok(SallaEvent::Quiet(Quiet::$quiet)), )+
            }
        }
    };
}

/// One arm of `read`: the variant with its payload read, or without one.
macro_rules! arm {
    ($r:ident, $variant:ident) => {
        Ok(SallaEvent::$variant)
    };
    ($r:ident, $variant:ident, $payload:ty) => {
        read_as::<$payload>($r, SallaEvent::$variant)
    };
}

/// Reads a `T` and makes it the event `wrap` names. (Not `SallaEvent::X(T::read(r)?)` in each
/// arm of `read`: moving the payload into the event, written out arm by arm, cost every shopper
/// ~200 B gzip; here it is one function per payload type, and one tiny `wrap` per variant.)
fn read_as<T: Payload>(
    r: &mut Reader<'_>,
    wrap: fn(T) -> SallaEvent,
) -> Result<SallaEvent, Problem> {
    T::read(r).map(wrap)
}

/// `kind`, once for each alias of it.
macro_rules! alias {
    ($alias:literal, $kind:expr) => {
        $kind
    };
}

/// The pattern `_` for a variant's payload, whatever its type.
macro_rules! any {
    ($payload:ty) => {
        _
    };
}

// To add an event: one row here, and one row in `mapping::row` (see the README, "Adding an
// event"). A row that names an existing payload type needs nothing else; a new shape needs its
// type and `Payload` impl in `payload`.
catalog! {
    events {
        ProductViewed(Product) => "Product Viewed",
        ProductAdded(CartItem) => "Product Added",
        ProductRemoved(CartItem) => "Product Removed",
        WishlistProductAddedToCart(CartItem) => "Wishlist Product Added to Cart",
        CartViewed(CartSnapshot) => "Cart Viewed",
        CartUpdated(CartSnapshot) => "Cart Updated",
        CheckoutStarted(CartSnapshot) => "Checkout Started",
        OrderCompleted(Order) => "Order Completed",
        SignedIn(Account) => "Signed In",
        SignedUp(Account) => "Signed Up",
        SignedOut => "Signed Out",
        PromotionViewed(Promotion) => "Promotion Viewed",
        PromotionClicked(Promotion) => "Promotion Clicked",
        CouponApplied(Coupon) => "Coupon Applied",
        CouponRemoved(Coupon) => "Coupon Removed",
        CouponDenied(Coupon) => "Coupon Denied",
        ProductAddedToWishlist(WishlistItem) => "Product Added to Wishlist" | "Wishlist Product Added",
        ProductRemovedFromWishlist(WishlistItem) => "Product Removed from Wishlist" | "Wishlist Product Removed",
        ProductsSearched(Search) => "Products Searched",
        ProductShared(Shared) => "Product Shared",
        ProductReviewed(Review) => "Product Reviewed",
        Page(Page) => "page",
    }
    quiet {
        ProductListViewed => "Product List Viewed",
        ProductListFiltered => "Product List Filtered",
        ProductClicked => "Product Clicked",
        RecommendationListViewed => "Recommendation List Viewed",
        ProductReordered => "Product Reordered",
        UserProfileUpdated => "User Profile Updated",
        MarketSelected => "Market Selected",
    }
}

impl SallaEvent {
    /// The event's name: the canonical catalog name, or a custom event's own.
    pub fn name(&self) -> &str {
        match self {
            SallaEvent::Custom(c) => &c.name,
            other => other.kind().map_or("", Kind::name),
        }
    }
}

/// Where each name of [`Kind::NAMES_LISTED`] starts, and (last) where the text ends: the names
/// are kept in the wasm once, in that text, and read out of it by index.
const NAME_STARTS: [u16; KIND_OF_NAME.len() + 1] = name_starts(Kind::NAMES_LISTED);

/// The index in [`Kind::NAMES_LISTED`] of each kind's canonical (first) name, by discriminant.
const CANONICAL: [u8; Kind::ALL.len()] = canonical();

const fn name_starts<const N: usize>(listed: &str) -> [u16; N] {
    let bytes = listed.as_bytes();
    let mut out = [0; N];
    let (mut at, mut n) = (0, 1);
    while at < bytes.len() {
        if bytes[at] == b',' && n < N {
            out[n] = (at + 1) as u16;
            n += 1;
        }
        at += 1;
    }
    out
}

const fn canonical<const K: usize>() -> [u8; K] {
    let mut out = [0; K];
    // Backwards, so that a kind's first name is the one left.
    let mut at = KIND_OF_NAME.len();
    while at > 0 {
        at -= 1;
        out[KIND_OF_NAME[at] as usize] = at as u8;
    }
    out
}

/// The name at `at` in [`Kind::NAMES_LISTED`] (without its comma).
fn listed(at: usize) -> &'static str {
    let start = usize::from(NAME_STARTS[at]);
    let end = usize::from(NAME_STARTS[at + 1]) - 1;
    Kind::NAMES_LISTED.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tape::{Item, Tape};
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
        assert_eq!(Kind::from_name(""), None);
        assert_eq!(Kind::from_name("  "), None);
        assert_eq!(Kind::from_name(","), None);
        // Every kind's name is its first spelling, read back out of the listed text.
        let mut at = 0;
        for (i, name) in Kind::NAMES.iter().enumerate() {
            let kind = Kind::from_name(name).unwrap();
            if Kind::ALL.get(at) == Some(&kind) {
                assert_eq!(kind.name(), *name);
                at += 1;
            } else {
                assert_ne!(kind.name(), *name, "{i}: an alias, not the canonical name");
            }
        }
        assert_eq!(at, Kind::ALL.len());
        assert_eq!(
            Kind::ProductAddedToWishlist.name(),
            "Product Added to Wishlist"
        );
        assert_eq!(Kind::MarketSelected.name(), "Market Selected");
        assert_eq!(
            Kind::NAMES_LISTED,
            [Kind::NAMES.join(","), ",".into()].concat()
        );
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(*k));
        }
    }

    #[test]
    fn every_name_reads_as_the_event_of_its_row() {
        // Every field some payload cannot be sent without.
        let required = Tape::from(&val!({"product_id": "1", "promotion_id": "p", "query": "q"}));
        let Item::Object(fields) = required.root() else {
            unreachable!()
        };
        let mut seen = Vec::new();
        for name in Kind::NAMES {
            let kind = Kind::from_name(name).expect(name);
            let event = read(kind, &mut Reader::new(name, fields)).expect(name);
            assert_eq!(event.kind(), Some(kind), "{name}");
            seen.push(kind);
        }
        for k in Kind::ALL {
            assert!(seen.contains(k), "{k:?} has no name");
        }
    }
}
