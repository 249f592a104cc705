//! Parsing Salla's storefront events: what the tracker reads from each (`docs/mapping.md` §2,
//! "Reading payloads").
//!
//! These are the tests of [`parse`] as a whole: names, leniency, warnings and errors together.

use super::parse_value as parse;
use super::*;
use crate::salesmanago::limits;
use crate::value::testing::val;
use crate::value::Value;

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
