//! The mapping contract (`docs/mapping.md` §2–§4), one row per catalog event: a realistic Salla
//! payload (the shapes Salla's storefront sends) and the exact `contactEvent` expected.
#![cfg(not(target_arch = "wasm32"))]

use salla_salesmanago::config::Config;
use salla_salesmanago::contact::Shopper;
use salla_salesmanago::mapping::{Env, Skip};
use salla_salesmanago::pipeline::{page_user, Outcome, Pipeline};
use salla_salesmanago::protocol::Contact;
use salla_salesmanago::salla::Kind;
use salla_salesmanago::tape::Tape;
use salla_salesmanago::value::Value;
use serde_json::{json, Value as Json};

const NOW: u64 = 1_763_829_999_000;

fn env() -> Env<'static> {
    Env {
        now_ms: NOW,
        shop_domain: Some("store.example"),
        store_id: Some("123"),
    }
}

fn value(j: Json) -> Value {
    Value::from(j)
}

fn config(extra: Json) -> Config {
    let mut base = json!({"clientId": "client-1", "endpoint": "/collect"});
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    Config::from_value(&value(base)).unwrap().0
}

/// The contactEvent fields every event carries.
fn common(description: &str, mut fields: Json) -> Json {
    let f = fields.as_object_mut().unwrap();
    f.insert("date".into(), json!(NOW));
    f.insert("description".into(), json!(description));
    f.insert("location".into(), json!("123"));
    f.insert("shopDomain".into(), json!("store.example"));
    fields
}

enum Expect {
    Sent(Json),
    Skipped(Skip),
}

fn run(pipeline: &mut Pipeline, name: &str, payload: Json) -> Outcome {
    let mut n = 0;
    pipeline
        .process(name, &Tape::from(&value(payload)), &env(), || {
            n += 1;
            format!("gen-{n}")
        })
        .outcome
}

fn sent(outcome: Outcome) -> Json {
    match outcome {
        Outcome::Send(envelope) => {
            serde_json::from_str(&envelope.event.to_value().to_json()).unwrap()
        }
        other => panic!("expected an event, got {other:?}"),
    }
}

fn product() -> Json {
    json!({"event_id": "e-pv", "product_id": 1001, "name": "عطر العود", "category": "عطور",
           "brand": "Oud House", "variant": "100ml", "price": "250.50", "quantity": 1,
           "currency": "SAR", "sku": "OUD-1", "url": "https://store.example/p/1001",
           "image_url": "https://cdn.example/1001.jpg", "position": null, "source": null,
           "request_id": null})
}

/// Every row: (event name, configuration, payload, expectation).
fn table() -> Vec<(&'static str, Json, Json, Expect)> {
    use Expect::*;
    let off = json!({});
    let wish = json!({"wishlist_id": "77_5", "wishlist_name": "متجر العود", "product_id": 1001,
                      "name": "عطر العود", "brand": "Oud House", "variant": null, "price": 250.5,
                      "quantity": 1, "sku": "OUD-1", "position": 0, "url": "https://store.example/p/1001",
                      "image_url": null, "category": "عطور", "currency": "SAR"});
    let wish_expect = |name: &str| {
        Sent(common(
            name,
            json!({"contactExtEventType": "OTHER", "products": "1001", "value": 250.5,
            "detail1": name, "detail2": "عطر العود", "detail3": "77_5"}),
        ))
    };
    let added_line = json!({"cart_id": 9, "cart_item_id": 501, "product_id": 1001, "category": "عطور",
        "currency": "SAR", "name": "عطر العود", "brand": "Oud House", "variant": "100ml", "price": "250.50",
        "quantity": 2, "sku": "OUD-1", "coupon": null, "position": 3, "url": "https://store.example/p/1001",
        "image_url": "https://cdn.example/1001.jpg", "source": null, "request_id": null});
    let cart_of_added = |name: &str| {
        Sent(common(
            name,
            json!({"contactExtEventType": "CART", "products": "1001", "value": 501,
            "externalId": "9", "detail1": "عطر العود", "detail2": "2", "detail3": "250.5", "detail4": "SAR"}),
        ))
    };
    let on = |name: &str| json!({"events": {name: true}});
    let quiet = |name: &'static str, payload: Json| {
        [
            (
                name,
                off.clone(),
                payload.clone(),
                Skipped(Skip::OffByDefault),
            ),
            (
                name,
                on(name),
                payload,
                Sent(common(
                    name,
                    json!({"contactExtEventType": "OTHER", "detail1": name}),
                )),
            ),
        ]
    };
    let mut rows = vec![
        (
            "Product Viewed",
            off.clone(),
            product(),
            Sent(common(
                "Product Viewed",
                json!({"contactExtEventType": "VISIT", "products": "1001", "value": 250.5,
             "detail1": "عطر العود", "detail2": "عطور", "detail3": "Oud House",
             "detail4": "https://store.example/p/1001", "detail5": "OUD-1", "detail6": "SAR"}),
            )),
        ),
        (
            "Product Added",
            off.clone(),
            added_line.clone(),
            cart_of_added("Product Added"),
        ),
        (
            "Wishlist Product Added to Cart",
            off.clone(),
            json!({"wishlist_id": "77_5", "wishlist_name": "متجر العود", "cart_id": "9", "product_id": "1001",
                "category": "عطور", "name": "عطر العود", "brand": "Oud House", "variant": "100ml",
                "price": 250.5, "quantity": 2, "sku": "OUD-1", "coupon": null, "position": 0,
                "url": "https://store.example/p/1001", "image_url": null, "currency": "SAR"}),
            cart_of_added("Wishlist Product Added to Cart"),
        ),
        // Removing the only product from a fresh cart: the whole cart is now empty.
        (
            "Product Removed",
            off.clone(),
            json!({"cart_id": "9", "product_id": "1001", "category": "عطور", "currency": "SAR", "name": "عطر العود",
                "brand": null, "variant": null, "price": 250.5, "quantity": 2, "sku": "OUD-1", "coupon": null,
                "position": null, "url": null, "image_url": null}),
            Sent(common(
                "Product Removed",
                json!({"contactExtEventType": "CART", "value": 0, "externalId": "9",
             "detail4": "SAR"}),
            )),
        ),
        (
            "Cart Viewed",
            off.clone(),
            json!({"cart_id": "9", "products": [
             {"product_id": "1", "cart_item_id": "11", "name": "مسك, أبيض", "price": 10, "quantity": 2,
              "currency": "SAR", "coupon": "EID", "variant": "1", "sku": "M-1"},
             {"product_id": 2, "cart_item_id": "12", "name": "Amber", "price": "5.5", "quantity": "1",
              "currency": "SAR", "coupon": "EID"}]}),
            Sent(common(
                "Cart Viewed",
                json!({"contactExtEventType": "CART", "products": "1,2", "value": 25.5,
             "externalId": "9", "detail1": "مسك  أبيض,Amber", "detail2": "2,1", "detail3": "10,5.5",
             "detail4": "SAR", "detail5": "EID"}),
            )),
        ),
        (
            "Cart Updated",
            off.clone(),
            json!({"cart_id": "9", "value": 118.45, "revenue": 103, "tax": 15.45, "discount": 0, "shipping": 0,
                "currency": "SAR", "affiliation": null, "products": [
                    {"product_id": "7", "name": "بخور", "price": 51.5, "quantity": 2, "category": "",
                     "sku": "", "brand": "", "currency": "SAR", "variant": "", "coupon": null}]}),
            Sent(common(
                "Cart Updated",
                json!({"contactExtEventType": "CART", "products": "7", "value": 118.45,
             "externalId": "9", "detail1": "بخور", "detail2": "2", "detail3": "51.5", "detail4": "SAR"}),
            )),
        ),
        (
            "Checkout Started",
            off.clone(),
            json!({"checkout_id": "chk-1", "order_id": "", "affiliation": "", "value": 80, "revenue": 80,
                "shipping": 0, "tax": 0, "discount": 0, "coupon": "", "currency": "SAR",
                "products": [{"product_id": "5", "sku": "S", "name": "Oud", "price": 40, "quantity": 2}]}),
            Sent(common(
                "Checkout Started",
                json!({"contactExtEventType": "CART", "products": "5", "value": 80,
             "externalId": "chk-1", "detail1": "Oud", "detail2": "2", "detail3": "40", "detail4": "SAR"}),
            )),
        ),
        (
            "Order Completed",
            off.clone(),
            json!({"checkout_id": "chk-1", "order_id": 90001, "affiliation": "store", "total": "362.25",
                "subtotal": 330, "revenue": 330, "shipping": 25, "tax": 49.5, "discount": 42.25,
                "coupon": "EID10", "currency": "SAR", "products": [
                    {"product_id": "1", "name": "مسك", "price": 100, "quantity": 2},
                    {"product_id": "2", "name": "عنبر", "price": 130, "quantity": 1}]}),
            Sent(common(
                "Order Completed",
                json!({"contactExtEventType": "PURCHASE", "products": "1,2",
             "value": 362.25, "externalId": "90001", "detail1": "مسك,عنبر", "detail2": "2,1",
             "detail3": "100,130", "detail4": "SAR", "detail5": "EID10", "detail6": "25",
             "detail7": "49.5", "detail8": "42.25"}),
            )),
        ),
        (
            "Signed In",
            off.clone(),
            json!({"first_name": "نورة", "last_name": "العتيبي", "type": "user", "mobile": "+966500000000",
                "email": "noura@example.sa"}),
            Sent(common(
                "Signed In",
                json!({"contactExtEventType": "LOGIN", "detail1": "Signed In"}),
            )),
        ),
        (
            "Signed Up",
            off.clone(),
            json!({"first_name": "Sara", "email": "sara@example.sa"}),
            Sent(common(
                "Signed Up",
                json!({"contactExtEventType": "LOGIN", "detail1": "Signed Up"}),
            )),
        ),
        (
            "Signed Out",
            off.clone(),
            json!({"event_id": "e-out"}),
            Skipped(Skip::OffByDefault),
        ),
        (
            "Promotion Viewed",
            off.clone(),
            json!({"promotion_id": "promo-001", "creative": "summer-sale-banner", "name": "تخفيضات الصيف",
                "position": "buy_x_get_y_offer_modal"}),
            Sent(common(
                "Promotion Viewed",
                json!({"contactExtEventType": "OFFER", "externalId": "promo-001",
             "detail1": "تخفيضات الصيف", "detail2": "summer-sale-banner", "detail3": "buy_x_get_y_offer_modal",
             "detail4": "Promotion Viewed"}),
            )),
        ),
        (
            "Promotion Clicked",
            off.clone(),
            json!({"promotion_id": 5, "name": "Eid", "position": 2}),
            Sent(common(
                "Promotion Clicked",
                json!({"contactExtEventType": "OFFER", "externalId": "5",
             "detail1": "Eid", "detail3": "2", "detail4": "Promotion Clicked"}),
            )),
        ),
        (
            "Coupon Applied",
            off.clone(),
            json!({"cart_id": "9", "coupon_name": "EID10", "discount": 10, "currency": "SAR"}),
            Sent(common(
                "Coupon Applied",
                json!({"contactExtEventType": "OTHER", "value": 10, "externalId": "9",
             "detail1": "Coupon Applied", "detail2": "EID10"}),
            )),
        ),
        (
            "Coupon Removed",
            off.clone(),
            json!({"cart_id": "9", "coupon_name": "", "discount": 0, "currency": ""}),
            Sent(common(
                "Coupon Removed",
                json!({"contactExtEventType": "OTHER", "value": 0, "externalId": "9",
             "detail1": "Coupon Removed"}),
            )),
        ),
        (
            "Coupon Denied",
            off.clone(),
            json!({"cart_id": "", "coupon_name": "BAD", "reason": "الكوبون منتهي"}),
            Sent(common(
                "Coupon Denied",
                json!({"contactExtEventType": "OTHER", "detail1": "Coupon Denied",
             "detail2": "BAD", "detail3": "الكوبون منتهي"}),
            )),
        ),
        (
            "Product Added to Wishlist",
            off.clone(),
            wish.clone(),
            wish_expect("Product Added to Wishlist"),
        ),
        (
            "Wishlist Product Added",
            off.clone(),
            wish.clone(),
            wish_expect("Product Added to Wishlist"),
        ),
        (
            "Product Removed from Wishlist",
            off.clone(),
            wish.clone(),
            wish_expect("Product Removed from Wishlist"),
        ),
        (
            "Wishlist Product Removed",
            off.clone(),
            wish,
            wish_expect("Product Removed from Wishlist"),
        ),
        (
            "Products Searched",
            off.clone(),
            json!({"query": "عود", "total_results": 12}),
            Sent(common(
                "Products Searched",
                json!({"contactExtEventType": "OTHER", "detail1": "Products Searched",
             "detail2": "عود", "detail3": "12"}),
            )),
        ),
        (
            "Product Shared",
            off.clone(),
            {
                let mut p = product();
                p.as_object_mut()
                    .unwrap()
                    .insert("share_via".into(), json!("whatsapp"));
                p
            },
            Sent(common(
                "Product Shared",
                json!({"contactExtEventType": "OTHER", "products": "1001",
             "detail1": "Product Shared", "detail2": "whatsapp"}),
            )),
        ),
        (
            "Product Reviewed",
            off.clone(),
            json!({"product_id": 1001, "review_id": "90001", "review_body": "رائحة ممتازة", "rating": 5}),
            Sent(common(
                "Product Reviewed",
                json!({"contactExtEventType": "OTHER", "products": "1001",
             "detail1": "Product Reviewed", "detail2": "5", "detail3": "رائحة ممتازة"}),
            )),
        ),
        (
            "page",
            off.clone(),
            json!({"name": "product.single", "id": "1001", "keywords": "عود",
                                      "referrer": "https://google.com/"}),
            Skipped(Skip::OffByDefault),
        ),
        (
            "page",
            on("page"),
            json!({"name": "product.single", "id": "1001", "referrer": "https://google.com/"}),
            Sent(common(
                "page",
                json!({"contactExtEventType": "VISIT", "detail1": "product.single",
             "detail2": "https://google.com/"}),
            )),
        ),
        (
            "Loyalty Points Redeemed",
            off.clone(),
            json!({"points": 120}),
            Skipped(Skip::CustomEventsOff),
        ),
        (
            "Loyalty Points Redeemed",
            json!({"customEvents": true}),
            json!({"points": 120, "tier": "gold"}),
            Sent(common(
                "Loyalty Points Redeemed",
                json!({"contactExtEventType": "OTHER",
             "detail1": "Loyalty Points Redeemed", "detail2": "points=120", "detail3": "tier=gold"}),
            )),
        ),
    ];
    rows.extend(quiet(
        "Product List Viewed",
        json!({"list_id": "category_12", "category": "عطور", "products": []}),
    ));
    rows.extend(quiet(
        "Product List Filtered",
        json!({"list_id": "c", "filters": [{"type": "brand", "value": "x"}]}),
    ));
    rows.extend(quiet(
        "Product Clicked",
        json!({"product_id": "1", "source": "pdp_fbt"}),
    ));
    rows.extend(quiet(
        "Recommendation List Viewed",
        json!({"recommendation_type": "fbt", "products": []}),
    ));
    rows.extend(quiet("Product Reordered", json!({"product_id": "1"})));
    rows.extend(quiet(
        "User Profile Updated",
        json!({"updated_fields": ["first_name"]}),
    ));
    rows.extend(quiet(
        "Market Selected",
        json!({"id": "2", "country": "SA", "currency": "SAR", "locale": "ar"}),
    ));
    rows
}

#[test]
fn every_catalog_event_maps_as_the_contract_says() {
    for (name, extra, payload, expect) in table() {
        let mut pipeline = Pipeline::new(config(extra.clone()));
        let outcome = run(&mut pipeline, name, payload);
        match expect {
            Expect::Sent(want) => assert_eq!(sent(outcome), want, "{name} with {extra}"),
            Expect::Skipped(reason) => {
                assert_eq!(outcome, Outcome::Skipped(reason), "{name} with {extra}")
            }
        }
    }
}

#[test]
fn the_table_covers_every_catalog_name() {
    let names: Vec<&str> = table().iter().map(|row| row.0).collect();
    for name in Kind::NAMES {
        assert!(names.contains(name), "no mapping row for {name}");
    }
}

#[test]
fn a_cart_sequence_sends_whole_carts_then_one_purchase() {
    let mut p = Pipeline::new(config(json!({})));
    let line = |id: &str, name: &str, price: f64, q: u32| json!({"cart_id": "9", "product_id": id, "name": name, "price": price, "quantity": q, "currency": "SAR"});
    let carts: Vec<Json> = [
        ("Product Added", line("1", "مسك", 100.0, 1)),
        ("Product Added", line("2", "عنبر", 50.0, 2)),
        ("Product Added", line("1", "مسك", 100.0, 1)),
        (
            "Product Removed",
            json!({"cart_id": "9", "product_id": "2"}),
        ),
        (
            "Cart Viewed",
            json!({"cart_id": "9", "products": [
            {"product_id": "1", "name": "مسك", "price": 100, "quantity": 2, "coupon": "EID"}]}),
        ),
    ]
    .into_iter()
    .map(|(name, payload)| sent(run(&mut p, name, payload)))
    .collect();
    let summary: Vec<(Json, Json, Json, Json)> = carts
        .iter()
        .map(|c| {
            (
                c["products"].clone(),
                c["value"].clone(),
                c["detail2"].clone(),
                c["externalId"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!("1"), json!(100), json!("1"), json!("9")),
            (json!("1,2"), json!(200), json!("1,2"), json!("9")),
            (json!("1,2"), json!(300), json!("2,2"), json!("9")),
            (json!("1"), json!(200), json!("2"), json!("9")),
            (json!("1"), json!(200), json!("2"), json!("9")),
        ]
    );
    assert!(carts.iter().all(|c| c["contactExtEventType"] == "CART"));
    assert_eq!(carts[4]["detail5"], "EID");

    // The order lists no products: it is the cart that was checked out.
    let purchase = sent(run(
        &mut p,
        "Order Completed",
        json!({"order_id": "o-1", "currency": "SAR"}),
    ));
    assert_eq!(purchase["contactExtEventType"], "PURCHASE");
    assert_eq!(purchase["products"], "1");
    assert_eq!(purchase["value"], 200);
    assert_eq!(purchase["externalId"], "o-1");
    assert!(
        p.cart().lines.is_empty() && p.cart().id.is_none(),
        "PURCHASE clears the cart"
    );

    let next = sent(run(
        &mut p,
        "Product Added",
        json!({"cart_id": "10", "product_id": "3", "price": 5}),
    ));
    assert_eq!(
        (next["products"].clone(), next["externalId"].clone()),
        (json!("3"), json!("10"))
    );
}

#[test]
fn overrides_change_the_type_switch_off_and_switch_on() {
    let mut p = Pipeline::new(config(json!({"events": {
        "Product Viewed": "other", "Products Searched": false, "Product Clicked": "VISIT"}})));
    assert_eq!(
        sent(run(&mut p, "Product Viewed", product()))["contactExtEventType"],
        "OTHER"
    );
    assert_eq!(
        run(&mut p, "Products Searched", json!({"query": "x"})),
        Outcome::Skipped(Skip::SwitchedOff)
    );
    let clicked = sent(run(&mut p, "Product Clicked", json!({"product_id": "1"})));
    assert_eq!(clicked["contactExtEventType"], "VISIT");
}

#[test]
fn cart_events_and_the_order_ask_for_the_cart_to_be_kept_other_events_do_not() {
    let mut p = Pipeline::new(config(json!({})));
    let changed = |p: &mut Pipeline, name: &str, payload: Json| {
        p.process(name, &Tape::from(&value(payload)), &env(), || "id".into())
            .cart_changed
    };
    let added = json!({"cart_id": "9", "product_id": "1", "price": 10});
    assert!(changed(&mut p, "Product Added", added));
    assert!(!changed(
        &mut p,
        "Product Viewed",
        json!({"product_id": "1"})
    ));
    assert!(!changed(&mut p, "Products Searched", json!({"query": "q"})));
    assert!(changed(
        &mut p,
        "Order Completed",
        json!({"order_id": "5", "total": 10})
    ));
    assert!(p.cart().lines.is_empty());
}

#[test]
fn a_switched_off_cart_event_still_updates_the_held_cart() {
    let mut p = Pipeline::new(config(json!({"events": {"Product Added": false}})));
    run(
        &mut p,
        "Product Added",
        json!({"cart_id": "9", "product_id": "1", "price": 10}),
    );
    let viewed = sent(run(
        &mut p,
        "Product Removed",
        json!({"cart_id": "9", "product_id": "404"}),
    ));
    assert_eq!(viewed["products"], "1");
}

#[test]
fn the_email_goes_only_with_send_email_and_consent() {
    let signed_in = json!({"email": "noura@example.sa"});
    let mut off = Pipeline::new(config(json!({})));
    run(&mut off, "Signed In", signed_in.clone());
    assert_eq!(
        off.contact(Some("c-1"), true, None).email,
        None,
        "sendEmail defaults to off"
    );

    let mut on = Pipeline::new(config(json!({"sendEmail": true})));
    run(&mut on, "Signed In", signed_in);
    let c = on.contact(Some("c-1"), true, None);
    assert_eq!(
        (c.contact_id.as_deref(), c.email.as_deref()),
        (Some("c-1"), Some("noura@example.sa"))
    );
    assert_eq!(
        on.contact(None, false, None).email,
        None,
        "the shopper refused"
    );
    run(&mut on, "Signed Out", json!({}));
    assert_eq!(
        on.contact(Some("c-1"), true, None),
        Contact::default(),
        "Signed Out forgets the email, and the smclient contact is the one who left"
    );
    run(&mut on, "Signed Up", json!({"email": "not an email"}));
    assert_eq!(
        on.contact(None, true, None).email,
        None,
        "junk is never an email"
    );
}

#[test]
fn name_and_phone_go_under_the_email_rule() {
    let signed_in = json!({"email": "noura@example.sa", "first_name": "نورة", "last_name": "العتيبي",
                           "mobile": "0501234567", "mobile_code": "+966", "type": "user"});
    let mut on = Pipeline::new(config(json!({"sendEmail": true})));
    run(&mut on, "Signed In", signed_in.clone());
    let c = on.contact(None, true, None);
    assert_eq!(
        (c.email.as_deref(), c.name.as_deref(), c.phone.as_deref()),
        (
            Some("noura@example.sa"),
            Some("نورة العتيبي"),
            Some("+966501234567")
        )
    );
    let refused = on.contact(Some("c-1"), false, None);
    assert_eq!(
        refused,
        Contact::default(),
        "refused: no email, name or phone, and not the smclient id either"
    );
    let mut off = Pipeline::new(config(json!({})));
    run(&mut off, "Signed In", signed_in);
    assert_eq!(off.contact(None, true, None), Contact::default());

    // A mobile-only shopper: the phone alone, under the same rule.
    let mut mobile = Pipeline::new(config(json!({"sendEmail": true})));
    run(
        &mut mobile,
        "Signed In",
        json!({"mobile": "+966 50 123 4567", "type": "user"}),
    );
    let c = mobile.contact(None, true, None);
    assert_eq!((c.email, c.phone.as_deref()), (None, Some("+966501234567")));
}

#[test]
fn the_page_user_completes_the_contact_until_signed_out() {
    let page_user = page_user(&Value::from(json!({
        "type": "user", "id": 7, "email": "noura@example.sa", "mobile": 501234567,
        "mobile_code": "+966", "first_name": "Noura", "last_name": "A"
    })));
    assert_eq!(
        page_user,
        Some(Shopper {
            email: Some("noura@example.sa".into()),
            name: Some("Noura A".into()),
            phone: Some("+966501234567".into()),
        }),
        "numbers read as text, as in payloads"
    );
    for guest in [
        json!({"type": "guest", "email": "a@b.sa"}),
        json!({"email": "a@b.sa"}),
        json!({"type": "user"}),
        json!("user"),
    ] {
        assert_eq!(
            salla_salesmanago::pipeline::page_user(&Value::from(guest.clone())),
            None,
            "{guest}"
        );
    }
    let mut p = Pipeline::new(config(json!({"sendEmail": true})));
    // Signed In's own fields (no mobile_code) come first; the page's record adds the phone.
    run(
        &mut p,
        "Signed In",
        json!({"email": "noura@example.sa", "first_name": "نورة", "mobile": "501234567"}),
    );
    let c = p.contact(None, true, page_user.as_ref());
    assert_eq!(
        (c.email.as_deref(), c.name.as_deref(), c.phone.as_deref()),
        (
            Some("noura@example.sa"),
            Some("نورة"),
            Some("+966501234567")
        )
    );
    let fresh = Pipeline::new(config(json!({"sendEmail": true})));
    assert_eq!(
        fresh
            .contact(None, true, page_user.as_ref())
            .name
            .as_deref(),
        Some("Noura A"),
        "a shopper signed in on an earlier page"
    );
    assert_eq!(
        fresh.contact(None, false, page_user.as_ref()),
        Contact::default()
    );
    run(&mut p, "Signed Out", json!({}));
    assert_eq!(
        p.contact(None, true, page_user.as_ref()),
        Contact::default(),
        "the page's record is stale after Signed Out"
    );
}

#[test]
fn an_event_id_reused_by_another_event_is_sent_under_a_derived_id() {
    // Salla's Product Shared carries the last Product Viewed payload, event_id included.
    let mut p = Pipeline::new(config(json!({})));
    let id = |o: Outcome| match o {
        Outcome::Send(e) => e.id,
        other => panic!("{other:?}"),
    };
    assert_eq!(id(run(&mut p, "Product Viewed", product())), "e-pv");
    let mut shared = product();
    shared
        .as_object_mut()
        .unwrap()
        .insert("share_via".into(), json!("whatsapp"));
    assert_eq!(
        id(run(&mut p, "Product Shared", shared.clone())),
        "e-pv:Product Shared"
    );
    assert_eq!(
        run(&mut p, "Product Shared", shared),
        Outcome::Duplicate("e-pv".into())
    );
}

#[test]
fn the_same_event_id_is_processed_once() {
    let mut p = Pipeline::new(config(json!({})));
    assert!(matches!(
        run(&mut p, "Product Viewed", product()),
        Outcome::Send(_)
    ));
    assert_eq!(
        run(&mut p, "Product Viewed", product()),
        Outcome::Duplicate("e-pv".into())
    );
}

#[test]
fn the_last_512_event_ids_are_remembered_and_older_ones_forgotten() {
    let mut p = Pipeline::new(config(json!({})));
    let viewed = |i: usize| {
        let mut payload = product();
        payload["event_id"] = json!(format!("e{i}"));
        payload
    };
    // Past two turns of the ring, so that what remembers the ids' hashes is rebuilt on the way.
    for i in 0..1_100 {
        assert!(matches!(
            run(&mut p, "Product Viewed", viewed(i)),
            Outcome::Send(_)
        ));
    }
    // 1,100 seen, 512 remembered: each of e588..e1099 is a duplicate, e0..e587 were forgotten.
    for i in (588..1_100).rev() {
        assert_eq!(
            run(&mut p, "Product Viewed", viewed(i)),
            Outcome::Duplicate(format!("e{i}")),
            "e{i}"
        );
    }
    assert!(matches!(
        run(&mut p, "Product Viewed", viewed(587)),
        Outcome::Send(_)
    ));
}

#[test]
fn bad_payloads_are_refused_by_name_or_sent_without_the_bad_field() {
    let mut p = Pipeline::new(config(json!({"customEvents": true})));
    for (name, payload, field) in [
        ("Product Viewed", json!({"name": "no id"}), "product_id"),
        (
            "Product Added",
            json!({"product_id": {"nested": [1]}}),
            "product_id",
        ),
        (
            "Promotion Viewed",
            json!({"promotion_id": null}),
            "promotion_id",
        ),
        ("Products Searched", json!({"query": ""}), "query"),
        ("Product Shared", json!({"product_id": true}), "product_id"),
    ] {
        match run(&mut p, name, payload) {
            Outcome::Rejected(e) => {
                assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
                assert!(e.to_string().starts_with(name), "{e}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    match run(&mut p, "Cart Viewed", json!([1, 2])) {
        Outcome::Rejected(e) => assert_eq!(
            e.to_string(),
            "Cart Viewed was not sent: its payload must be an object, got an array"
        ),
        other => panic!("{other:?}"),
    }
    // Wrong types on optional fields: the event goes without them.
    let e = sent(run(
        &mut p,
        "Product Viewed",
        json!({"product_id": "1", "price": "twelve",
        "name": {"ar": "عود"}, "brand": [1], "currency": true}),
    ));
    assert_eq!(
        e,
        common(
            "Product Viewed",
            json!({"contactExtEventType": "VISIT", "products": "1"})
        )
    );
}

#[test]
fn huge_text_is_cut_to_salesmanago_limits_on_character_boundaries() {
    let mut p = Pipeline::new(config(json!({"customEvents": true})));
    let arabic = "عطر".repeat(400_000);
    let ids: Vec<Json> = (0..300)
        .map(|i| json!({"product_id": format!("p{i:05}"), "name": arabic.clone()}))
        .collect();
    let order = sent(run(
        &mut p,
        "Order Completed",
        json!({"order_id": "x".repeat(1000), "products": ids}),
    ));
    let products = order["products"].as_str().unwrap();
    assert!(
        products.len() <= 512 && products.split(',').all(|id| id.len() == 6),
        "whole ids only"
    );
    assert_eq!(order["externalId"].as_str().unwrap().len(), 255);
    let names = order["detail1"].as_str().unwrap();
    assert_eq!(names.encode_utf16().count(), 255);
    assert!(
        names.chars().all(|c| "عطر".contains(c)),
        "no broken characters"
    );
    let custom = sent(run(&mut p, &"😀".repeat(3000), json!({})));
    let description = custom["description"].as_str().unwrap();
    assert!(description.encode_utf16().count() <= 2048);
    assert!(description.chars().all(|c| c == '😀'), "emoji kept whole");
}
