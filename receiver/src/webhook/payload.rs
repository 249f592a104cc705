//! Salla's webhook bodies, typed (docs/webhooks.md §3): the envelope, and the `data` of the
//! events the receiver acts on. Salla's data is loosely typed — ids and amounts arrive as numbers
//! or as text, booleans in settings as `"true"` — so the few fields read here are read leniently
//! ([`Id`], [`Amount`]); everything else in a body is ignored.

use salla_salesmanago::number;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value as Json};

/// An id Salla writes as a number or as text (`1305146709` or `"1305146709"`), kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Id(pub String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Json::deserialize(d)? {
            Json::String(s) if !s.trim().is_empty() => Ok(Id(s.trim().to_owned())),
            Json::Number(n) if n.is_u64() || n.is_i64() => Ok(Id(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "an id must be a whole number or text, got {other}"
            ))),
        }
    }
}

/// A number Salla writes as a number or as numeric text; anything else reads as absent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Amount(pub Option<f64>);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Amount(match Json::deserialize(d)? {
            Json::Number(n) => n.as_f64().filter(|f| f.is_finite()),
            Json::String(s) => number::parse(&s),
            _ => None,
        }))
    }
}

/// `{ "amount": …, "currency": … }`, Salla's money.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Money {
    /// The amount.
    #[serde(default)]
    pub amount: Amount,
    /// Its currency code.
    #[serde(default)]
    pub currency: Option<String>,
}

/// Every webhook's envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    /// `order.created`, `app.settings.updated`, …
    pub event: String,
    /// The Salla store id.
    pub merchant: Id,
    /// When Salla made the event (text in Salla's own format; only logged).
    #[serde(default)]
    pub created_at: Option<Json>,
    /// The event's data.
    #[serde(default)]
    pub data: Json,
}

/// A customer: `order.created`'s `customer`, and the `data` of `customer.*`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Customer {
    /// Salla's customer id.
    #[serde(default)]
    pub id: Option<Id>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// The mobile number without its country code.
    #[serde(default)]
    pub mobile: Option<Id>,
    /// The country code, e.g. `+966` or `966`.
    #[serde(default)]
    pub mobile_code: Option<Id>,
    /// Email, as Salla has it (checked where it is used).
    #[serde(default)]
    pub email: Option<String>,
}

impl Customer {
    /// First and last name, as one.
    pub fn name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.first_name, &self.last_name]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        // Within the card's limit as a batch's `contact.name` is (255 UTF-16 units): a card
        // SALESmanago refuses would hold back every event of the shopper's email.
        (!parts.is_empty())
            .then(|| parts.join(" "))
            .filter(|n| n.encode_utf16().count() <= 255)
    }

    /// `+` and digits, from `mobile_code` and `mobile` (the form protocol v1 uses).
    pub fn phone(&self) -> Option<String> {
        let digits = |id: &Option<Id>| -> String {
            id.as_ref()
                .map(|i| i.0.chars().filter(char::is_ascii_digit).collect())
                .unwrap_or_default()
        };
        let (code, mobile) = (digits(&self.mobile_code), digits(&self.mobile));
        (!code.is_empty() && !mobile.is_empty())
            .then(|| format!("+{code}{mobile}"))
            .filter(|p| salla_salesmanago::received::is_phone(p))
    }

    /// The email when it is one SALESmanago can file a contact under.
    pub fn email(&self) -> Option<&str> {
        self.email
            .as_deref()
            .map(str::trim)
            .filter(|e| salla_salesmanago::received::is_email(e))
    }
}

/// `order.created`'s `data` (the fields a PURCHASE needs).
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    /// Salla's order id.
    pub id: Id,
    /// The order number the shopper sees.
    #[serde(default)]
    pub reference_id: Option<Id>,
    /// The order's currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// Totals.
    #[serde(default)]
    pub amounts: OrderAmounts,
    /// The lines.
    #[serde(default)]
    pub items: Vec<Item>,
    /// Who ordered.
    #[serde(default)]
    pub customer: Option<Customer>,
}

/// `order.amounts`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrderAmounts {
    /// The order total.
    #[serde(default)]
    pub total: Money,
    /// Shipping.
    #[serde(default)]
    pub shipping_cost: Money,
}

/// One line of an order.
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    /// The line's id (used as the product id only when `product.id` is absent).
    #[serde(default)]
    pub id: Option<Id>,
    /// The product's name.
    #[serde(default)]
    pub name: Option<String>,
    /// How many.
    #[serde(default)]
    pub quantity: Amount,
    /// The product.
    #[serde(default)]
    pub product: Option<ItemProduct>,
    /// The line's amounts.
    #[serde(default)]
    pub amounts: ItemAmounts,
}

/// `items[].product`.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemProduct {
    /// The product id: what the storefront's events name a product by.
    #[serde(default)]
    pub id: Option<Id>,
}

/// `items[].amounts`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ItemAmounts {
    /// The unit price before tax.
    #[serde(default)]
    pub price_without_tax: Money,
    /// The line's total.
    #[serde(default)]
    pub total: Money,
}

impl Item {
    /// The product id the storefront uses: `product.id`, else the line's id.
    pub fn product_id(&self) -> Option<&str> {
        self.product
            .as_ref()
            .and_then(|p| p.id.as_ref())
            .or(self.id.as_ref())
            .map(|i| i.0.as_str())
    }

    /// The unit price: `price_without_tax`, else the line's total over its quantity.
    pub fn unit_price(&self) -> Option<f64> {
        self.amounts.price_without_tax.amount.0.or_else(|| {
            let q = self.quantity.0.filter(|q| *q > 0.0).unwrap_or(1.0);
            self.amounts.total.amount.0.map(|t| t / q)
        })
    }
}

/// `app.settings.updated`'s `data`: `settings` is the app's whole settings form for the store.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SettingsUpdated {
    /// Every setting, by its key in the form.
    #[serde(default)]
    pub settings: Map<String, Json>,
}

/// The events the receiver acts on; the rest are answered 2xx and counted.
#[derive(Debug, Clone)]
pub enum Webhook {
    /// `order.created`.
    OrderCreated(Box<Order>),
    /// `customer.created`, `customer.updated`, `customer.login`.
    Customer(Customer),
    /// `app.settings.updated`.
    SettingsUpdated(SettingsUpdated),
    /// `app.uninstalled`.
    Uninstalled,
    /// Anything else (`app.installed`, `order.status.updated`, …): taken and ignored.
    Other,
}

impl Webhook {
    /// Reads `data` for the envelope's `event`. An error names the event and the field.
    pub fn read(envelope: &Envelope) -> Result<Webhook, String> {
        let data = || envelope.data.clone();
        let typed = |e: serde_json::Error| format!("{}: data: {e}", envelope.event);
        Ok(match envelope.event.as_str() {
            "order.created" => {
                Webhook::OrderCreated(Box::new(serde_json::from_value(data()).map_err(typed)?))
            }
            "customer.created" | "customer.updated" | "customer.login" => {
                Webhook::Customer(serde_json::from_value(data()).map_err(typed)?)
            }
            "app.settings.updated" => {
                Webhook::SettingsUpdated(serde_json::from_value(data()).map_err(typed)?)
            }
            "app.uninstalled" => Webhook::Uninstalled,
            _ => Webhook::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_order_as_salla_sends_it() {
        let envelope: Envelope = serde_json::from_value(json!({
            "event": "order.created", "merchant": 1305146709, "created_at": "Thu Jun 23 2022",
            "data": {
                "id": 1904101399, "reference_id": "60157523", "currency": "SAR",
                "amounts": { "total": { "amount": "530.50", "currency": "SAR" }, "shipping_cost": { "amount": 30 } },
                "items": [
                    { "id": 1, "name": "عطر العود", "quantity": 2, "product": { "id": 1001 },
                      "amounts": { "price_without_tax": { "amount": 250.25 } } },
                    { "id": 2, "name": "Musk", "quantity": "1", "amounts": { "total": { "amount": 0 } } }
                ],
                "customer": { "id": 7, "first_name": "Noura", "last_name": " ", "mobile": 501234567,
                              "mobile_code": "+966", "email": "noura@example.sa" },
                "status": { "slug": "under_review" }
            }
        }))
        .unwrap();
        assert_eq!(envelope.merchant, Id("1305146709".into()));
        let Webhook::OrderCreated(order) = Webhook::read(&envelope).unwrap() else {
            panic!("an order")
        };
        assert_eq!(order.id.0, "1904101399");
        assert_eq!(order.reference_id, Some(Id("60157523".into())));
        assert_eq!(order.amounts.total.amount.0, Some(530.5));
        assert_eq!(order.items[0].product_id(), Some("1001"));
        assert_eq!(order.items[0].unit_price(), Some(250.25));
        assert_eq!(
            order.items[1].product_id(),
            Some("2"),
            "the line id without product.id"
        );
        assert_eq!(order.items[1].quantity.0, Some(1.0));
        let customer = order.customer.as_ref().unwrap();
        assert_eq!(customer.name().as_deref(), Some("Noura"));
        assert_eq!(customer.phone().as_deref(), Some("+966501234567"));
        assert_eq!(customer.email(), Some("noura@example.sa"));
    }

    #[test]
    fn what_cannot_be_read_is_named() {
        let envelope = |event: &str, data: Json| Envelope {
            event: event.into(),
            merchant: Id("1".into()),
            created_at: None,
            data,
        };
        let e = Webhook::read(&envelope("order.created", json!({ "items": [] }))).unwrap_err();
        assert_eq!(e, "order.created: data: missing field `id`");
        let e = Webhook::read(&envelope("order.created", json!({ "id": 1.5 }))).unwrap_err();
        assert!(e.contains("an id must be a whole number or text"), "{e}");
        assert!(matches!(
            Webhook::read(&envelope("review.added", json!(null))),
            Ok(Webhook::Other)
        ));
        assert!(serde_json::from_value::<Envelope>(json!({ "event": "x" })).is_err());
    }

    #[test]
    fn a_bad_email_or_a_partial_phone_is_not_used() {
        let c = Customer {
            email: Some("not an email".into()),
            mobile: Some(Id("501234567".into())),
            ..Customer::default()
        };
        assert_eq!(c.email(), None);
        assert_eq!(c.phone(), None, "no country code");
        assert_eq!(c.name(), None);
        // What SALESmanago would refuse stays off the card (it would hold back the email's events).
        let c = Customer {
            first_name: Some("ن".repeat(256)),
            mobile_code: Some(Id("966".into())),
            mobile: Some(Id("12".into())),
            ..Customer::default()
        };
        assert_eq!(c.phone(), None, "+96612: too short for a number");
        assert_eq!(c.name(), None, "over 255 characters");
        let c = Customer {
            first_name: Some("نورة".into()),
            mobile_code: Some(Id("+966".into())),
            mobile: Some(Id("501234567".into())),
            ..Customer::default()
        };
        assert_eq!(c.phone().as_deref(), Some("+966501234567"));
        assert_eq!(c.name().as_deref(), Some("نورة"));
    }
}
