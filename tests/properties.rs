//! Property tests: whatever a page sends, the core neither panics nor produces an event that
//! the receiver (and so SALESmanago) would refuse.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use salla_salesmanago::config::Config;
use salla_salesmanago::mapping::Env;
use salla_salesmanago::outbox::{Class, Entry, Outbox};
use salla_salesmanago::pipeline::{Outcome, Pipeline};
use salla_salesmanago::protocol::Envelope;
use salla_salesmanago::received::ReceivedContactEvent;
use salla_salesmanago::salla::Kind;
use salla_salesmanago::tape::Tape;
use salla_salesmanago::value::Value;

/// Field names the parser reads, so generated objects often hit real fields with wrong values.
const KEYS: &[&str] = &[
    "product_id",
    "price",
    "quantity",
    "name",
    "cart_id",
    "products",
    "value",
    "total",
    "order_id",
    "currency",
    "coupon",
    "promotion_id",
    "query",
    "email",
    "first_name",
    "last_name",
    "mobile",
    "mobile_code",
    "event_id",
    "category",
    "discount",
    "checkout_id",
    "revenue",
    "position",
    "rating",
    "x",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[0-9]{1,6}(\\.[0-9]{1,3})?",
        "\\PC{0,40}",
        "[ء-ي ]{0,30}",
        (1usize..3000).prop_map(|n| "é😀".repeat(n)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(Value::Number),
        prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(1e300)]
            .prop_map(Value::Number),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(KEYS).prop_map(str::to_owned), inner),
                0..10
            )
            .prop_map(Value::Object),
        ]
    })
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(Kind::ALL).prop_map(|k| k.name().to_owned()),
        "\\PC{0,30}",
    ]
}

/// The receiver takes it: SALESmanago's rules, as written once for both sides (`received`).
/// Which limits hold is `ContactEvent`'s own guarantee; this checks that the two sides agree.
fn receiver_takes(event: &Value) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(&event.to_json()) else {
        panic!("an object: {}", event.to_json())
    };
    if let Err(e) = ReceivedContactEvent::from_object(fields) {
        panic!("the receiver refuses {}: {e}", event.to_json());
    }
}

fn all_on() -> Config {
    let mut events: Vec<(String, Value)> = Kind::ALL
        .iter()
        .map(|k| (k.name().to_owned(), Value::Bool(true)))
        .collect();
    events.push(("x".into(), Value::Bool(true)));
    let (config, _) = Config::from_value(&Value::object([
        ("clientId", Value::from("c")),
        ("endpoint", Value::from("/collect")),
        ("customEvents", Value::Bool(true)),
        ("sendEmail", Value::Bool(true)),
        ("events", Value::Object(events)),
    ]))
    .unwrap();
    config
}

/// A shopper's stream of cart-related events over two carts (and none named), with repeated
/// event ids: the events whose CART a holding pipeline keeps back, and those that release it.
fn cart_event() -> impl Strategy<Value = (String, Value)> {
    let name = prop::sample::select(
        &[
            "Product Added",
            "Product Removed",
            "Wishlist Product Added to Cart",
            "Cart Viewed",
            "Cart Updated",
            "Checkout Started",
            "Order Completed",
            "Coupon Applied",
            "Product Viewed",
            "Signed In",
        ][..],
    );
    let cart = prop_oneof![
        Just(Value::Null),
        Just(Value::from("9")),
        Just(Value::from("10"))
    ];
    let line = (1u8..4, 1u8..3).prop_map(|(id, q)| {
        Value::object([
            ("product_id", Value::Number(id.into())),
            ("quantity", Value::Number(q.into())),
            ("price", Value::Number(f64::from(id) * 10.0)),
        ])
    });
    let event_id = prop_oneof![
        Just(Value::Null),
        (0u8..6).prop_map(|n| Value::from(n.to_string().as_str()))
    ];
    (
        name,
        cart,
        line.clone(),
        prop::collection::vec(line, 0..3),
        event_id,
    )
        .prop_map(|(name, cart, line, lines, event_id)| {
            let mut fields = match line {
                Value::Object(f) => f,
                _ => unreachable!(),
            };
            fields.push(("cart_id".into(), cart));
            fields.push(("event_id".into(), event_id));
            fields.push(("products".into(), Value::Array(lines)));
            fields.push(("order_id".into(), Value::from("o-1")));
            fields.push(("coupon_name".into(), Value::from("SAVE")));
            (name.to_owned(), Value::Object(fields))
        })
}

/// Configurations that leave cart events CARTs, switch one off, or send one (or a coupon) as
/// another type.
fn cart_config() -> impl Strategy<Value = Config> {
    prop::sample::select(vec![
        None,
        Some(("Product Added", Value::from("OTHER"))),
        Some(("Cart Viewed", Value::Bool(false))),
        Some(("Coupon Applied", Value::from("CART"))),
        Some(("Checkout Started", Value::Bool(true))),
    ])
    .prop_map(|over| {
        let mut fields = vec![
            ("clientId", Value::from("c")),
            ("endpoint", Value::from("/collect")),
        ];
        if let Some((name, value)) = over {
            fields.push(("events", Value::object([(name, value)])));
        }
        Config::from_value(&Value::object(fields)).unwrap().0
    })
}

fn queue(outbox: &mut Outbox, envelope: Envelope) {
    let t = outbox.queue_time(0);
    let class = Class::of(&envelope.event);
    outbox.push(Entry::new(
        envelope.id.clone(),
        envelope.to_json(),
        t,
        class,
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_event_stream_is_handled_within_limits(
        events in prop::collection::vec((name(), value()), 1..12),
        store in proptest::option::of(text()),
    ) {
        let mut pipeline = Pipeline::new(all_on());
        let env = Env { now_ms: 1_763_829_999_000, shop_domain: Some("s.example"), store_id: store.as_deref() };
        let mut n = 0u32;
        for (name, payload) in &events {
            let processed = pipeline.process(name, &Tape::from(payload), &env, || { n += 1; n.to_string() });
            if let Outcome::Send(envelope) = processed.outcome {
                prop_assert!(!envelope.id.is_empty());
                receiver_takes(&envelope.event.to_value());
                // The body is valid JSON.
                let body = envelope.to_value().to_json();
                prop_assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
            }
            // Whatever a sign-in said, the contact keeps to the protocol's rules.
            let contact = pipeline.contact(Some("c"), true, None);
            if let Some(phone) = &contact.phone {
                let digits = phone.strip_prefix('+').unwrap_or("");
                prop_assert!((7..=15).contains(&digits.len()), "{phone}");
                prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{phone}");
            }
            if let Some(name) = &contact.name {
                prop_assert!((1..=255).contains(&name.encode_utf16().count()));
            }
        }
    }

    #[test]
    fn any_configuration_is_accepted_or_explained(config in value()) {
        match Config::from_value(&config) {
            Ok(_) => {}
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in errors {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn stored_carts_of_any_shape_restore(stored in value()) {
        let cart = salla_salesmanago::cart::Cart::from_value(&stored);
        prop_assert!(cart.lines.iter().all(|l| l.quantity > 0.0));
        let again = salla_salesmanago::cart::Cart::from_value(&cart.to_value());
        prop_assert_eq!(again, cart);
    }

    /// Holding each cart's CART back until a release (the end of a slice, at random points
    /// here) queues exactly what mapping every event at once queues, once the outbox replaced
    /// each waiting CART by the newer one of its cart: same events, same ids, same JSON, same
    /// order.
    #[test]
    fn holding_carts_queues_what_the_outbox_would_have_kept(
        events in prop::collection::vec((cart_event(), any::<bool>()), 1..16),
        config in cart_config(),
    ) {
        let env = Env { now_ms: 1_763_829_999_000, shop_domain: Some("s.example"), store_id: Some("1") };
        let (mut every, mut holding) = (Pipeline::new(config.clone()), Pipeline::new(config).holding_carts());
        let (mut all, mut held) = (Outbox::default(), Outbox::default());
        let (mut n, mut m) = (0u32, 0u32);
        for (at, ((name, payload), slice_ends)) in events.iter().enumerate() {
            let env = Env { now_ms: env.now_ms + at as u64, ..env };
            let p = every.process(name, &Tape::from(payload), &env, || { n += 1; format!("gen-{n}") });
            prop_assert!(p.released.is_none() && !matches!(p.outcome, Outcome::Held));
            if let Outcome::Send(e) = p.outcome {
                queue(&mut all, e);
            }
            let p = holding.process(name, &Tape::from(payload), &env, || { m += 1; format!("gen-{m}") });
            if let Some(e) = p.released {
                queue(&mut held, e);
            }
            if let Outcome::Send(e) = p.outcome {
                queue(&mut held, e);
            }
            if *slice_ends {
                if let Some(e) = holding.release(&env) {
                    queue(&mut held, e);
                }
            }
            prop_assert_eq!(every.cart(), holding.cart());
        }
        if let Some(e) = holding.release(&env) {
            queue(&mut held, e);
        }
        let entries = |o: &Outbox| o.entries().iter().map(|e| (e.id.clone(), e.json.clone())).collect::<Vec<_>>();
        prop_assert_eq!(entries(&all), entries(&held));
    }
}
