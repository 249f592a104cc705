//! The bus table against the raw payload shapes Twilight emits (`docs/mapping.md` §1): each
//! route read into the catalog event Salla's engine would have built, taken only when the
//! allow-list withholds it.

use super::*;
use crate::salla::{parse_value as parse, CartItem, Line, SallaEvent};
use crate::value::testing::val;

/// A bus event's input: its two arguments and the page's context, as the shell builds it.
fn input(args: [Value; 2], context: Value) -> Value {
    let [a, b] = args;
    let mut fields = vec![("0".to_owned(), a), ("1".to_owned(), b)];
    if let Value::Object(more) = context {
        fields.extend(more);
    }
    Value::Object(fields)
}

/// The cart page of a signed-in shopper in Saudi riyals, with an allow-list that names nothing.
fn page(slug: &str) -> Value {
    val!({
        "allow": [], "page": slug, "user_type": "user", "currency": "SAR",
        "wishlist_id": "1305_77",
        "user": {"email": "noura@example.sa", "first_name": "نورة", "mobile": "+966500000000"},
    })
}

/// The catalog event a bus event becomes on `slug`, parsed as the tracker parses it.
fn event(bus: &str, args: [Value; 2], slug: &str) -> SallaEvent {
    match take(bus, &input(args, page(slug))) {
        Taken::Event(kind, payload) => {
            let parsed = parse(kind.name(), &payload).unwrap_or_else(|e| panic!("{bus}: {e}"));
            assert!(parsed.warnings.is_empty(), "{bus}: {:?}", parsed.warnings);
            parsed.event
        }
        other => panic!("{bus}: {other:?}"),
    }
}

/// A product as Salla's server writes it in its `events` (the item, in an array).
fn server_item() -> Value {
    val!([{
        "id": 1001, "name": "عطر العود الملكي", "price": "250.50", "quantity": 2,
        "category": "عطور", "brand": "دار العود", "sku": "OUD-1001", "currency": "SAR",
        "url": "https://shop.example/p/1001", "cart_id": 7001, "cart_item_id": 9001, "coupon": "EID10",
    }])
}

fn line(id: &str, name: &str, quantity: f64, price: f64) -> Line {
    Line {
        product_id: id.into(),
        name: Some(name.into()),
        quantity,
        price: Some(price),
    }
}

#[test]
fn server_events_read_the_item_as_salla_does() {
    let SallaEvent::ProductViewed(p) = event(
        "Product Viewed",
        [server_item(), Value::Null],
        "product.single",
    ) else {
        panic!()
    };
    assert_eq!(
        (
            p.product_id.as_str(),
            p.price,
            p.sku.as_deref(),
            p.currency.as_deref()
        ),
        ("1001", Some(250.5), Some("OUD-1001"), Some("SAR"))
    );
    let added = CartItem {
        cart_id: Some("7001".into()),
        product_id: "1001".into(),
        name: Some("عطر العود الملكي".into()),
        price: Some(250.5),
        quantity: Some(2.0),
        currency: Some("SAR".into()),
        coupon: Some("EID10".into()),
    };
    assert_eq!(
        event(
            "Product Added",
            [server_item(), Value::Null],
            "product.single"
        ),
        SallaEvent::ProductAdded(added.clone())
    );
    assert_eq!(
        event("Product Removed", [server_item(), Value::Null], "cart"),
        SallaEvent::ProductRemoved(added.clone())
    );
    // On the wishlist page Salla reports the same add under its own name.
    assert_eq!(
        event(
            "Product Added",
            [server_item(), Value::Null],
            "customer.wishlist"
        ),
        SallaEvent::WishlistProductAddedToCart(added)
    );
}

#[test]
fn a_widget_add_is_read_from_the_widget_and_not_again_from_the_server() {
    let widget = val!([{
        "product": {"id": 1002, "name": "مسك أبيض", "price": 95},
        "position": 1, "cartItem": {"id": 9002, "quantity": 1}, "cartId": 7001,
    }]);
    let SallaEvent::ProductAdded(item) =
        event("Product Added", [widget, Value::Null], "product.single")
    else {
        panic!()
    };
    assert_eq!(
        (
            item.product_id.as_str(),
            item.price,
            item.quantity,
            item.cart_id.as_deref()
        ),
        ("1002", Some(95.0), Some(1.0), Some("7001"))
    );
    // The server's own Product Added of that add, while the widget is the source: Salla drops it.
    let mut context = page("product.single");
    if let Value::Object(f) = &mut context {
        f.push(("source".into(), "pdp_fbt".into()));
    }
    assert_eq!(
        take(
            "Product Added",
            &input([server_item(), Value::Null], context)
        ),
        Taken::Unrouted
    );
}

#[test]
fn whole_carts_read_their_lines() {
    let viewed = val!([{"cart_id": 7001, "products": [
        {"id": 1001, "name": "عطر", "price": 250.5, "quantity": 1, "cart_item_id": 9001},
        {"name": "no id"},
        {"id": "1002", "name": "مسك", "price": "95", "quantity": "2"},
    ]}]);
    let SallaEvent::CartViewed(cart) = take_event("Cart Viewed", [viewed, Value::Null], "cart")
    else {
        panic!()
    };
    assert_eq!(cart.cart_id.as_deref(), Some("7001"));
    assert_eq!(cart.currency.as_deref(), Some("SAR"));
    assert_eq!(
        cart.lines,
        [
            line("1001", "عطر", 1.0, 250.5),
            line("1002", "مسك", 2.0, 95.0)
        ]
    );

    // Twilight's cart summary (`cart::updated`), with the total Salla states.
    let summary = val!({"id": 7001, "sub_total": 751.5, "total": 864.23, "coupon": "EID10",
        "items": [{"id": 9000, "product_id": 1001, "product_name": "عطر", "product_price": 250.5, "quantity": 3}]});
    let SallaEvent::CartUpdated(cart) =
        event("cart::updated", [summary.clone(), Value::Null], "cart")
    else {
        panic!()
    };
    assert_eq!(
        (
            cart.cart_id.as_deref(),
            cart.value,
            cart.coupon.as_deref(),
            cart.currency.as_deref()
        ),
        (Some("7001"), Some(864.23), Some("EID10"), Some("SAR"))
    );
    assert_eq!(cart.lines, [line("1001", "عطر", 3.0, 250.5)]);
    // As Salla's engine: only on the cart page, and not the cart a page fetched on arrival.
    assert_eq!(
        take(
            "cart::updated",
            &input([summary.clone(), Value::Null], page("product.single"))
        ),
        Taken::Unrouted
    );
    let mut fetched = summary;
    if let Value::Object(f) = &mut fetched {
        f.push(("fromLatestFetched".into(), true.into()));
    }
    assert_eq!(
        take(
            "cart::updated",
            &input([fetched, Value::Null], page("cart"))
        ),
        Taken::Unrouted
    );
}

/// Like [`event`], but tolerating the warnings a bad line gives.
fn take_event(bus: &str, args: [Value; 2], slug: &str) -> SallaEvent {
    let Taken::Event(kind, payload) = take(bus, &input(args, page(slug))) else {
        panic!("{bus}")
    };
    parse(kind.name(), &payload).unwrap().event
}

#[test]
fn an_order_is_passed_through() {
    let order = val!([{"order_id": "ord-1", "total": 889.23, "currency": "SAR",
        "products": [{"product_id": "1001", "name": "عطر", "price": 250.5, "quantity": 3}]}]);
    let SallaEvent::OrderCompleted(o) = event("Order Completed", [order, Value::Null], "thank-you")
    else {
        panic!()
    };
    assert_eq!(
        (o.order_id.as_deref(), o.total),
        (Some("ord-1"), Some(889.23))
    );
    assert_eq!(o.lines, [line("1001", "عطر", 3.0, 250.5)]);
}

#[test]
fn coupons_read_twilights_responses() {
    let response = val!({"status": 200, "success": true, "data": {"cart": {"id": 7001, "coupon": "EID10", "discount": 25}}});
    let SallaEvent::CouponApplied(c) =
        event("cart::coupon.added", [response, "7001".into()], "cart")
    else {
        panic!()
    };
    assert_eq!(
        (c.cart_id.as_deref(), c.coupon_name.as_deref(), c.discount),
        (Some("7001"), Some("EID10"), Some(25.0))
    );

    let removed = val!({"coupon": "EID10", "data": {"cart": {"discount": 0}}});
    let SallaEvent::CouponRemoved(c) =
        event("cart::coupon.deleted", [removed, 7001.0.into()], "cart")
    else {
        panic!()
    };
    assert_eq!(
        (c.cart_id.as_deref(), c.coupon_name.as_deref(), c.discount),
        (Some("7001"), Some("EID10"), Some(0.0))
    );

    // An axios error; the refused code is inside the request's JSON text, which is not read.
    let error = val!({"response": {"config": {"data": "{\"coupon\":\"OLD2020\"}"},
        "data": {"error": {"message": "الكوبون منتهي الصلاحية"}}}});
    let SallaEvent::CouponDenied(c) = event(
        "cart::coupon.addition.failed",
        [error, "7001".into()],
        "cart",
    ) else {
        panic!()
    };
    assert_eq!(
        (c.cart_id.as_deref(), c.reason.as_deref()),
        (Some("7001"), Some("الكوبون منتهي الصلاحية"))
    );
}

#[test]
fn wishlist_events_read_the_product_of_the_response() {
    let response =
        val!({"status": 200, "data": {"product": {"id": 1002, "name": "مسك أبيض", "price": 95}}});
    for (bus, added) in [("wishlist::added", true), ("wishlist::removed", false)] {
        let item = match event(bus, [response.clone(), 1002.0.into()], "product.single") {
            SallaEvent::ProductAddedToWishlist(i) if added => i,
            SallaEvent::ProductRemovedFromWishlist(i) if !added => i,
            other => panic!("{bus}: {other:?}"),
        };
        assert_eq!(
            (
                item.product_id.as_str(),
                item.price,
                item.wishlist_id.as_deref()
            ),
            ("1002", Some(95.0), Some("1305_77"))
        );
    }
    // A response without the product still names it by the second argument.
    let SallaEvent::ProductAddedToWishlist(item) =
        event("wishlist::added", [val!({}), 1002.0.into()], "index")
    else {
        panic!()
    };
    assert_eq!(item.product_id, "1002");
}

#[test]
fn account_events_read_the_stored_shopper() {
    let SallaEvent::SignedIn(a) = event(
        "auth::logged.in",
        [val!({"data": {"token": "t"}}), Value::Null],
        "index",
    ) else {
        panic!()
    };
    assert_eq!(a.email.as_deref(), Some("noura@example.sa"));
    assert!(matches!(
        event("auth::registered", [Value::Null, Value::Null], "index"),
        SallaEvent::SignedUp(_)
    ));
    assert_eq!(
        event("auth::logged.out", [Value::Null, Value::Null], "index"),
        SallaEvent::SignedOut
    );
    // Not a user yet: Salla's engine waits, and so does the bus.
    let mut guest = page("index");
    if let Value::Object(f) = &mut guest {
        f.retain(|(k, _)| k != "user_type");
    }
    assert_eq!(
        take("auth::logged.in", &input([Value::Null, Value::Null], guest)),
        Taken::Unrouted
    );
}

#[test]
fn promotions_and_searches() {
    let offer = val!([{"id": 55, "creative": "eid-banner", "name": "عرض العيد", "position": "buy_x_get_y_offer_modal"}]);
    for bus in [
        "promotion::viewed",
        "salla::offer.promotion.viewed",
        "promotion::clicked",
        "salla::offer.promotion.clicked",
    ] {
        let (SallaEvent::PromotionViewed(p) | SallaEvent::PromotionClicked(p)) =
            event(bus, [offer.clone(), Value::Null], "index")
        else {
            panic!("{bus}")
        };
        assert_eq!(
            (p.promotion_id.as_str(), p.position.as_deref()),
            ("55", Some("buy_x_get_y_offer_modal"))
        );
    }
    for query in [val!({"query": "عود", "total": 12}), val!("عود")] {
        let SallaEvent::ProductsSearched(s) =
            event("Products Searched", [query, Value::Null], "index")
        else {
            panic!()
        };
        assert_eq!(s.query, "عود");
    }
}

#[test]
fn taken_exactly_when_the_allow_list_withholds_it() {
    // One raw event per route, each one its route holds under.
    let cases: Vec<(&str, Value, &str)> = vec![
        ("Product Viewed", server_item(), "product.single"),
        ("Product Added", server_item(), "product.single"),
        ("Product Added", server_item(), "customer.wishlist"),
        ("cart::updated", val!({"id": 1, "items": []}), "cart"),
        (
            "wishlist::added",
            val!({"data": {"product": {"id": 1}}}),
            "index",
        ),
        ("auth::logged.in", Value::Null, "index"),
        ("promotion::viewed", val!([{"id": 5}]), "index"),
    ];
    let every: Vec<Value> = Kind::NAMES.iter().map(|n| Value::from(*n)).collect();
    for (bus, arg, slug) in cases {
        let with = |allow: Value| {
            let mut context = page(slug);
            if let Value::Object(f) = &mut context {
                f.retain(|(k, _)| k != "allow");
                f.push(("allow".into(), allow));
            }
            take(bus, &input([arg.clone(), Value::Null], context))
        };
        let Taken::Event(kind, _) = with(val!([])) else {
            panic!("{bus} on {slug}: withheld by an empty allow-list, not taken")
        };
        // Salla's engine checks a re-emitted SDK event under its catalog name, a server event
        // under its own.
        let gate = if bus.contains("::") { kind.name() } else { bus };
        assert_eq!(with(Value::Array(every.clone())), Taken::Delivered, "{bus}");
        assert_eq!(with(val!([gate])), Taken::Delivered, "{bus}");
        assert!(
            matches!(with(val!(["Signed Out", "Some Other"])), Taken::Event(..)),
            "{bus}"
        );
        // No allow-list, or one that is not a list: Salla's engine reports nothing.
        for odd in [Value::Null, val!({"events": [gate]}), val!(1)] {
            assert!(matches!(with(odd), Taken::Event(..)), "{bus}");
        }
        assert_eq!(
            with(Value::from(["x,", gate].concat())),
            Taken::Delivered,
            "{bus}: text"
        );
    }
}

#[test]
fn odd_payloads_are_refused_by_name_never_a_panic() {
    let odd = [
        Value::Null,
        Value::from("text"),
        Value::Number(f64::NAN),
        val!([]),
        val!([[]]),
        val!([null]),
        val!({"data": "x", "0": {"id": {"x": 1}}}),
        val!([{"id": null, "products": "x", "items": 5, "product": {"id": []}}]),
    ];
    for bus in names().split(',') {
        for a in &odd {
            for b in &odd {
                for context in [
                    page("cart"),
                    page("customer.wishlist"),
                    Value::Null,
                    val!({"user": "x"}),
                ] {
                    if let Taken::Event(kind, payload) =
                        take(bus, &input([a.clone(), b.clone()], context))
                    {
                        // Either read, with what was usable, or refused with a message naming it.
                        if let Err(e) = parse(kind.name(), &payload) {
                            assert!(e.message().starts_with(kind.name()), "{}", e.message());
                        }
                    }
                }
            }
        }
    }
    let Taken::Event(kind, payload) = take(
        "Product Viewed",
        &input([val!([{}]), Value::Null], page("x")),
    ) else {
        panic!()
    };
    assert_eq!(
        parse(kind.name(), &payload).unwrap_err().message(),
        "Product Viewed was not sent: `product_id` is missing"
    );
    assert_eq!(
        take(
            "cart::item.added",
            &input([Value::Null, Value::Null], page("cart"))
        ),
        Taken::Unrouted
    );
}

#[test]
fn the_bus_names_are_listened_for_once_each() {
    let names = names();
    let mut distinct: Vec<&str> = names.split(',').collect();
    assert_eq!(distinct.len(), ROUTES.len());
    distinct.dedup();
    for (i, n) in distinct.iter().enumerate() {
        assert!(
            !distinct[i + 1..].contains(n),
            "{n}: its routes must be adjacent"
        );
    }
    assert_eq!(distinct.len(), 19);
    // Listening for a name Salla's engine does not read would take what it never withholds.
    for r in ROUTES {
        assert!(
            Kind::from_name(r.gate()).is_some() || r.gate() == "Product Added",
            "{}",
            r.bus
        );
    }
}

#[test]
fn array_indexes() {
    assert_eq!(index("0"), Some(0));
    assert_eq!(index("12"), Some(12));
    assert_eq!(index("x"), None);
    assert_eq!(index("1x"), None);
    assert_eq!(index("99999999999999999999999"), Some(usize::MAX));
}
