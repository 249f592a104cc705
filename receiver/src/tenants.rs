//! Tenants: the SALESmanago accounts the receiver delivers to, one per Salla store that installed
//! the app (docs/webhooks.md §4).
//!
//! A store's tenant is made by `app.settings.updated` from the app's settings form, keyed by the
//! Salla store id *and* the SALESmanago client id in those settings. The env file's account
//! (self-hosted, one store) is a tenant too, with the empty key. Every stored event carries its
//! tenant's key, and the forwarder sends it with that tenant's credentials only: one store's
//! events never go out under another's.
//!
//! What this module owns: reading a store's settings into a tenant, and which tenant a batch or a
//! webhook belongs to ([`Tenants::route`], [`Tenants::for_store`]). Persisting them is the store's.

use crate::config::{Account, Secret};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::fmt;

/// The env file's account's key.
pub const ENV: &str = "";

/// The key of a store's tenant: `<store id>:<client id>`.
pub fn key(store_id: &str, client_id: &str) -> String {
    format!("{store_id}:{client_id}")
}

/// A tenant's key as a reader sees it: `env` for the env file's account.
pub fn label(key: &str) -> &str {
    if key == ENV {
        "env"
    } else {
        key
    }
}

/// Where a store's tenant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The store's current settings: takes batches, delivers.
    Active,
    /// The store's settings name another client id now: takes no new batches, still delivers
    /// what it had taken, to the account it was taken for.
    Replaced,
    /// The store uninstalled the app: takes nothing, delivers nothing.
    Uninstalled,
}

impl Status {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Replaced => "replaced",
            Status::Uninstalled => "uninstalled",
        }
    }

    /// From what was stored; anything unknown is taken as uninstalled (delivers nothing).
    pub fn parse(s: &str) -> Status {
        match s {
            "active" => Status::Active,
            "replaced" => Status::Replaced,
            _ => Status::Uninstalled,
        }
    }
}

/// A Salla store's tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreTenant {
    /// The Salla store id (the webhooks' `merchant`).
    pub store_id: String,
    /// The SALESmanago client id from the store's settings.
    pub client_id: String,
    /// The account, when the settings hold all of it.
    pub account: Option<Account>,
    /// The settings that are missing or wrong, when the account is incomplete.
    pub problem: Option<String>,
    /// The store's `location` setting (the shop's identifier in SALESmanago), if any.
    pub location: Option<String>,
    /// Where it stands.
    pub status: Status,
}

impl StoreTenant {
    /// Its key.
    pub fn key(&self) -> String {
        key(&self.store_id, &self.client_id)
    }
}

/// The settings form's keys (docs/webhooks.md §4). `client_id`, `endpoint` (the receiver's URL)
/// and `location` are the tracker's public settings; the others are the receiver's, and the API
/// key and secret are password fields that never reach the page.
pub mod keys {
    /// The SALESmanago client id (public: the tracker sends it).
    pub const CLIENT_ID: &str = "client_id";
    /// The SALESmanago API key (password field).
    pub const API_KEY: &str = "api_key";
    /// The SALESmanago API secret (password field).
    pub const API_SECRET: &str = "api_secret";
    /// The email of the SALESmanago user who owns the contacts.
    pub const OWNER: &str = "owner";
    /// The account's API host, e.g. `https://app3.salesmanago.pl`.
    pub const API_ENDPOINT: &str = "api_endpoint";
    /// The shop's identifier in SALESmanago (public).
    pub const LOCATION: &str = "location";
}

/// Text of a setting: a string (trimmed) or a number; empty reads as absent.
fn text(settings: &Map<String, Json>, key: &str) -> Option<String> {
    match settings.get(key)? {
        Json::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Why settings make no tenant at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoClientId;

impl fmt::Display for NoClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the settings have no {}", keys::CLIENT_ID)
    }
}

/// A store's tenant from its whole settings form (`app.settings.updated`'s `data.settings`).
/// Settings without a client id make none; settings that lack the rest make a tenant whose
/// [`problem`](StoreTenant::problem) names what is missing, and which delivers nothing until
/// the settings are complete.
pub fn from_settings(
    store_id: &str,
    settings: &Map<String, Json>,
) -> Result<StoreTenant, NoClientId> {
    let client_id = text(settings, keys::CLIENT_ID).ok_or(NoClientId)?;
    let mut problems = Vec::new();
    let mut required = |key: &'static str| {
        let v = text(settings, key);
        if v.is_none() {
            problems.push(format!("{key} is missing"));
        }
        v.unwrap_or_default()
    };
    let api_key = required(keys::API_KEY);
    let api_secret = required(keys::API_SECRET);
    let owner = required(keys::OWNER);
    let endpoint = required(keys::API_ENDPOINT);
    let is_url = endpoint.starts_with("https://") || endpoint.starts_with("http://");
    if !endpoint.is_empty() && !is_url {
        problems.push(format!(
            "{} must be an http(s) URL such as https://app3.salesmanago.pl",
            keys::API_ENDPOINT
        ));
    }
    if !owner.is_empty() && !owner.contains('@') {
        problems.push(format!("{} must be an email address", keys::OWNER));
    }
    let account = problems.is_empty().then(|| Account {
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        client_id: client_id.clone(),
        api_key: Secret::from(api_key.as_str()),
        api_secret: Secret::from(api_secret.as_str()),
        owner,
    });
    Ok(StoreTenant {
        store_id: store_id.to_owned(),
        client_id,
        account,
        problem: (!problems.is_empty())
            .then(|| format!("the store's app settings: {}", problems.join(", "))),
        location: text(settings, keys::LOCATION),
        status: Status::Active,
    })
}

/// Why a batch has no tenant. The words say what to fix, for the tracker's debug log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No account takes this client id (and store).
    Unknown {
        /// The batch's client id.
        client_id: String,
        /// The batch's store id.
        store_id: Option<String>,
    },
    /// The store uninstalled the app.
    Uninstalled {
        /// The store.
        store_id: String,
    },
    /// Several stores use this client id, and the batch does not say which it is.
    Ambiguous {
        /// The batch's client id.
        client_id: String,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Unknown {
                client_id,
                store_id: Some(store),
            } => write!(
                f,
                "clientId \"{client_id}\" is not this receiver's SALESmanago account for store {store} (SM_CLIENT_ID, or the store's app settings); check the tracker's clientId"
            ),
            RouteError::Unknown { client_id, .. } => write!(
                f,
                "clientId \"{client_id}\" is not this receiver's SALESmanago account (SM_CLIENT_ID, or a store's app settings); check the tracker's clientId"
            ),
            RouteError::Uninstalled { store_id } => {
                write!(f, "store {store_id} uninstalled the app: nothing is taken for it")
            }
            RouteError::Ambiguous { client_id } => write!(
                f,
                "clientId \"{client_id}\" is used by several stores and the batch names no storeId"
            ),
        }
    }
}

/// Every tenant, in memory (the store keeps them durably).
#[derive(Debug, Clone, Default)]
pub struct Tenants {
    /// The env file's account, if the receiver has one.
    pub env: Option<Account>,
    /// The Salla store id the env file's account is for (`SM_SALLA_STORE_ID`).
    pub env_store: Option<String>,
    /// The stores' tenants, by key.
    pub stores: BTreeMap<String, StoreTenant>,
}

impl Tenants {
    /// The account of `key` and whether it may deliver: `Err` with why not (incomplete
    /// settings, uninstalled, unknown).
    pub fn account(&self, key: &str) -> Result<&Account, String> {
        if key == ENV {
            return self.env.as_ref().ok_or_else(|| {
                "no SALESmanago account in the environment (SM_CLIENT_ID …)".into()
            });
        }
        let t = self
            .stores
            .get(key)
            .ok_or_else(|| format!("no tenant {key}"))?;
        if t.status == Status::Uninstalled {
            return Err(format!("store {} uninstalled the app", t.store_id));
        }
        match (&t.account, &t.problem) {
            (Some(a), _) => Ok(a),
            (None, Some(p)) => Err(p.clone()),
            (None, None) => Err("incomplete settings".into()),
        }
    }

    /// Whether `key` names the env file's account or a store this copy of the tenants has (an
    /// event's tenant always existed when it was routed: one not known here was added since
    /// these were read).
    pub fn knows(&self, key: &str) -> bool {
        key == ENV || self.stores.contains_key(key)
    }

    /// The store of tenant `key` when it uninstalled the app.
    pub fn uninstalled_store(&self, key: &str) -> Option<&str> {
        self.stores
            .get(key)
            .filter(|t| t.status == Status::Uninstalled)
            .map(|t| t.store_id.as_str())
    }

    /// The tenant a batch with `client_id` (and `store_id`, when the page knows it) belongs to:
    /// the store's active tenant with that client id; else the env file's account when its
    /// client id matches; else, for a batch that names no store, the one store whose active
    /// tenant has that client id.
    pub fn route(&self, client_id: &str, store_id: Option<&str>) -> Result<String, RouteError> {
        if let Some(store) = store_id {
            let k = key(store, client_id);
            match self.stores.get(&k).map(|t| t.status) {
                Some(Status::Active) => return Ok(k),
                Some(Status::Uninstalled) => {
                    return Err(RouteError::Uninstalled {
                        store_id: store.to_owned(),
                    })
                }
                Some(Status::Replaced) | None => {}
            }
        }
        if self.env.as_ref().is_some_and(|a| a.client_id == client_id) {
            return Ok(ENV.to_owned());
        }
        if store_id.is_none() {
            let mut active = self
                .stores
                .values()
                .filter(|t| t.status == Status::Active && t.client_id == client_id);
            match (active.next(), active.next()) {
                (Some(t), None) => return Ok(t.key()),
                (Some(_), Some(_)) => {
                    return Err(RouteError::Ambiguous {
                        client_id: client_id.to_owned(),
                    })
                }
                _ => {}
            }
        }
        Err(RouteError::Unknown {
            client_id: client_id.to_owned(),
            store_id: store_id.map(str::to_owned),
        })
    }

    /// The tenant a webhook of store `store_id` belongs to: the store's active tenant; else,
    /// for a store with no tenant at all (never uninstalled), the env file's account when it is
    /// that store's (`SM_SALLA_STORE_ID`); else none. Never the env account for another store:
    /// its customers would be filed under the operator's account.
    pub fn for_store(&self, store_id: &str) -> Option<String> {
        if let Some(t) = self
            .stores
            .values()
            .find(|t| t.store_id == store_id && t.status == Status::Active)
        {
            return Some(t.key());
        }
        let known = self.stores.values().any(|t| t.store_id == store_id);
        (!known && self.env.is_some() && self.env_store.as_deref() == Some(store_id))
            .then(|| ENV.to_owned())
    }

    /// The `location` events of `key` carry when the page sets none.
    pub fn location(&self, key: &str) -> Option<&str> {
        self.stores.get(key).and_then(|t| t.location.as_deref())
    }

    /// Records `tenant` as its store's current one: other tenants of the store are replaced.
    pub fn set(&mut self, tenant: StoreTenant) {
        for t in self.stores.values_mut() {
            if t.store_id == tenant.store_id && t.status == Status::Active {
                t.status = Status::Replaced;
            }
        }
        self.stores.insert(tenant.key(), tenant);
    }

    /// Marks every tenant of `store_id` uninstalled; their keys.
    pub fn uninstall(&mut self, store_id: &str) -> Vec<String> {
        self.stores
            .values_mut()
            .filter(|t| t.store_id == store_id)
            .map(|t| {
                t.status = Status::Uninstalled;
                t.key()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(m) => m,
            _ => panic!("an object"),
        }
    }

    fn full(client: &str) -> Map<String, Json> {
        settings(json!({
            "client_id": client, "api_key": "k", "api_secret": "s", "owner": "o@shop.example",
            "api_endpoint": "https://app3.salesmanago.pl/", "endpoint": "https://collect.example/collect",
            "send_email": "true", "location": "oud"
        }))
    }

    #[test]
    fn full_settings_make_an_account_and_its_secrets_stay_hidden() {
        let t = from_settings("42", &full("c-1")).unwrap();
        assert_eq!(t.key(), "42:c-1");
        assert_eq!(t.problem, None);
        assert_eq!(t.location.as_deref(), Some("oud"));
        let a = t.account.as_ref().unwrap();
        assert_eq!(a.endpoint, "https://app3.salesmanago.pl");
        assert_eq!((a.api_key.expose(), a.api_secret.expose()), ("k", "s"));
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("api_secret: \"s\"") && shown.contains("***"),
            "{shown}"
        );
    }

    #[test]
    fn missing_settings_are_named_and_no_client_id_makes_no_tenant() {
        let t = from_settings(
            "42",
            &settings(json!({ "client_id": 77, "api_key": "", "owner": "nobody", "api_endpoint": "app3" })),
        )
        .unwrap();
        assert_eq!(t.client_id, "77");
        assert!(t.account.is_none());
        assert_eq!(
            t.problem.as_deref(),
            Some("the store's app settings: api_key is missing, api_secret is missing, api_endpoint must be an http(s) URL such as https://app3.salesmanago.pl, owner must be an email address")
        );
        assert_eq!(from_settings("42", &Map::new()), Err(NoClientId));
    }

    fn tenants() -> Tenants {
        let mut t = Tenants::default();
        t.set(from_settings("1", &full("a")).unwrap());
        t.set(from_settings("2", &full("b")).unwrap());
        t.set(from_settings("3", &full("b")).unwrap());
        t
    }

    #[test]
    fn a_batch_goes_to_its_stores_tenant() {
        let mut t = tenants();
        assert_eq!(t.route("a", Some("1")), Ok("1:a".into()));
        assert_eq!(
            t.route("a", None),
            Ok("1:a".into()),
            "the one store with that client id"
        );
        assert_eq!(t.route("b", Some("3")), Ok("3:b".into()));
        assert_eq!(
            t.route("b", None),
            Err(RouteError::Ambiguous {
                client_id: "b".into()
            })
        );
        assert!(
            matches!(t.route("a", Some("2")), Err(RouteError::Unknown { .. })),
            "another store's client id"
        );
        assert!(matches!(
            t.route("zz", None),
            Err(RouteError::Unknown { .. })
        ));
        // The env file's account takes its own client id from any store without a tenant.
        t.env = Some(from_settings("x", &full("env")).unwrap().account.unwrap());
        assert_eq!(t.route("env", Some("9")), Ok(ENV.into()));
        assert_eq!(t.route("env", None), Ok(ENV.into()));
        assert_eq!(
            t.for_store("9"),
            None,
            "the env account is not every store's"
        );
        t.env_store = Some("9".into());
        assert_eq!(t.for_store("9"), Some(ENV.into()), "its own store's");
        assert_eq!(t.for_store("8"), None);
        assert_eq!(t.for_store("2"), Some("2:b".into()));
        t.uninstall("2");
        t.env_store = Some("2".into());
        assert_eq!(
            t.for_store("2"),
            None,
            "an uninstalled store's webhooks go nowhere"
        );
    }

    #[test]
    fn new_settings_replace_and_uninstall_stops() {
        let mut t = tenants();
        t.set(from_settings("1", &full("a2")).unwrap());
        assert_eq!(t.stores["1:a"].status, Status::Replaced);
        assert!(
            t.account("1:a").is_ok(),
            "what it took still goes out, with its credentials"
        );
        assert!(matches!(
            t.route("a", Some("1")),
            Err(RouteError::Unknown { .. })
        ));
        assert_eq!(t.route("a2", Some("1")), Ok("1:a2".into()));
        assert_eq!(t.for_store("1"), Some("1:a2".into()));
        assert_eq!(t.uninstall("1"), ["1:a", "1:a2"]);
        assert_eq!(
            t.route("a2", Some("1")),
            Err(RouteError::Uninstalled {
                store_id: "1".into()
            })
        );
        assert_eq!(
            t.account("1:a2").unwrap_err(),
            "store 1 uninstalled the app"
        );
        assert_eq!(t.for_store("1"), None);
        assert_eq!(label(ENV), "env");
    }
}
