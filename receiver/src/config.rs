//! The receiver's configuration, from the environment and/or a dotenv file (`KEY=VALUE` lines).
//! A missing or bad value stops start-up with a message that names it. The API secret is never
//! printed: [`Secret`]'s `Debug` hides it, and so does [`SealingKey`]'s.

use crate::sealed::SealingKey;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// [`Config::max_body_bytes`]: 256 KiB.
const MAX_BODY_BYTES: usize = 256 * 1024;
const _: () = assert!(MAX_BODY_BYTES > salla_salesmanago::outbox::MAX_REQUEST_BYTES);

/// A value that must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that needs it (the `sha`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// A SALESmanago account the receiver delivers to.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// API base, e.g. `https://app3.salesmanago.pl` (the account's endpoint host).
    pub endpoint: String,
    /// The account's client id.
    pub client_id: String,
    /// API key.
    pub api_key: Secret,
    /// API secret: only its SHA-1 with the key and client id leaves the process.
    pub api_secret: Secret,
    /// The account user's email (`owner`).
    pub owner: String,
}

/// Everything the receiver needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The env file's SALESmanago account (self-hosted, one store): the tenant with the empty
    /// key. `None` when the receiver serves only the stores that installed the Salla app
    /// (their accounts come from `app.settings.updated`, see docs/webhooks.md).
    pub account: Option<Account>,
    /// The Salla app's webhook secret and strategy; `None` turns the webhook route off.
    pub webhook: Option<crate::webhook::WebhookAuth>,
    /// `SM_SECRET_KEY`: seals the stores' API keys and secrets in the database
    /// ([`crate::sealed`]). Required with webhooks on (they bring the stores' settings); a
    /// receiver with the env file's account only stores no secret.
    pub secret_key: Option<SealingKey>,
    /// The Salla store id of the env file's own store: the one store whose webhooks go to the
    /// env file's account when it has no settings of its own. Without it, no store's do (a
    /// vendor's receiver must never file another merchant's customers under its own account).
    pub salla_store_id: Option<String>,
    /// Store origins allowed to post, exactly (`https://store.example`); `*` alone allows any
    /// (a receiver that serves every store that installs the app cannot list them).
    pub allowed_origins: Vec<String>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where the database lives.
    pub data_dir: PathBuf,
    /// PostgreSQL shared by every instance (`postgres://…`); `None`: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// How long an instance holds the events it claimed for delivery: past it, another instance
    /// takes them (this one died). Longer than a round of calls to SALESmanago can take.
    pub claim_lease: Duration,
    /// Calls to SALESmanago an instance keeps in flight (`SM_PARALLEL_CALLS`, default
    /// [`crate::forwarder::PARALLEL_LANES`]); one store takes half of them at most.
    pub parallel_calls: usize,
    /// How long finished events are kept (`SM_KEEP_DAYS`, default 30): their ids deduplicate
    /// until then, so longer than a tracker retries (7 days).
    pub keep_finished: Duration,
    /// Largest request body: above the tracker's largest (a body it sends is never refused
    /// for its size, which would drop its events).
    pub max_body_bytes: usize,
    /// Requests a minute to `/collect` from one shopper's address (`SM_RATE_PER_IP`, 600): a
    /// page view sends a few, so only a script comes near it.
    pub rate_per_ip: u32,
    /// Requests a minute from one store origin (`SM_RATE_PER_ORIGIN`, 60,000): every shopper
    /// of the stores on that origin together.
    pub rate_per_origin: u32,
    /// Requests a minute for one store (`SM_RATE_PER_STORE`, 6,000), whatever its shoppers'
    /// addresses: keyed `store:<storeId>` for a store that installed the app, `client:<clientId>`
    /// for the env file's account (see `http::store_key`). 6,000 a minute is 100 requests a
    /// second, sustained, with a burst of 6,000: far above a busy store (a page view sends one
    /// batch, or a few, of the events of 40 ms), and under 2 % of the 5,550 a second one
    /// receiver takes on one core (README), so one store's flood (a bot, a theme that loops, a
    /// script posting under its id) cannot take the receiver from the other stores.
    pub rate_per_store: u32,
    /// Behind a reverse proxy every request comes from the proxy's address: take the shopper's
    /// from the last `X-Forwarded-For` hop instead (the one the proxy wrote).
    pub trust_proxy: bool,
    /// Take `/collect` requests that carry no `Origin` header. Browsers send one with every POST,
    /// so a request without it comes from a script or a server, which no origin check covers.
    pub allow_no_origin: bool,
    /// How long events naming no contact wait for a later batch that names one.
    pub contact_wait: Duration,
    /// Most events waiting for a contact, per anonymous id (per browser).
    pub contact_wait_max: usize,
    /// While SALESmanago refuses the account, how often one event is tried again to see whether
    /// the account works again.
    pub account_probe: Duration,
}

/// The variables, with what each is for.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "SM_API_ENDPOINT",
        "SALESmanago API host, e.g. https://app3.salesmanago.pl",
    ),
    ("SM_CLIENT_ID", "SALESmanago client id"),
    ("SM_API_KEY", "SALESmanago API key"),
    ("SM_API_SECRET", "SALESmanago API secret (never logged)"),
    (
        "SM_OWNER",
        "email of the SALESmanago account user that owns the contacts",
    ),
    (
        "SM_ALLOWED_ORIGINS",
        "comma-separated store origins allowed to post, e.g. https://store.example; * for any",
    ),
    (
        "SM_SALLA_WEBHOOK_SECRET",
        "the Salla app's webhook secret: turns on POST /salla/webhook (never logged)",
    ),
    (
        "SM_SECRET_KEY",
        "32 random bytes, base64 (openssl rand -base64 32) or 64 hex characters: seals each store's API key and secret in the database; required with SM_SALLA_WEBHOOK_SECRET; keep it, the same at every start (never logged)",
    ),
    (
        "SM_SALLA_STORE_ID",
        "the Salla store id of the env file's own store, whose webhooks go to its account",
    ),
    (
        "SM_SALLA_WEBHOOK_AUTH",
        "how Salla proves its webhooks, as the app is set: signature (default) or token",
    ),
    ("SM_LISTEN", "address to listen on (default 127.0.0.1:8787)"),
    ("SM_DATA_DIR", "directory for the SQLite database (default ./data)"),
    (
        "SM_DATABASE_URL",
        "postgres://user:password@host/db to share one PostgreSQL between several receivers (default: SQLite in SM_DATA_DIR; never logged)",
    ),
    (
        "SM_PARALLEL_CALLS",
        "calls to SALESmanago an instance keeps in flight, half of them at most for one store (default 8)",
    ),
    (
        "SM_KEEP_DAYS",
        "days finished events are kept to deduplicate retries, at least 8 (a tracker retries for 7; default 30)",
    ),
    (
        "SM_CLAIM_LEASE",
        "seconds an instance holds the events it took to deliver before another may take them (default 60)",
    ),
    (
        "SM_TRUST_PROXY",
        "true behind a reverse proxy: the shopper's address is the last X-Forwarded-For hop (default false)",
    ),
    (
        "SM_ALLOW_NO_ORIGIN",
        "true to take /collect requests without an Origin header, which no browser sends (default false)",
    ),
    (
        "SM_RATE_PER_IP",
        "requests a minute from one shopper's address (default 600)",
    ),
    (
        "SM_RATE_PER_ORIGIN",
        "requests a minute from one store origin (default 60000)",
    ),
    (
        "SM_RATE_PER_STORE",
        "requests a minute for one store, by the batch's storeId or clientId (default 6000)",
    ),
    ("SM_LOG", "log filter: info (default), debug, warn"),
];

impl Config {
    /// Reads the configuration through `get` (the environment, an env file, or a test's map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Vec<String>> {
        let mut errors = Vec::new();
        let set = |name: &str| get(name).is_some_and(|v| !v.trim().is_empty());
        let webhook_secret = get("SM_SALLA_WEBHOOK_SECRET")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        // No account variable at all, with webhooks on: the stores' accounts come from the
        // Salla app's settings only. Any one of them set: the env file's account, all required.
        let has_account = ACCOUNT_VARIABLES.iter().any(|n| set(n)) || webhook_secret.is_none();
        let mut required = |name: &str| match get(name).map(|v| v.trim().to_owned()) {
            Some(v) if !v.is_empty() => v,
            _ => {
                errors.push(format!("{name} is missing ({})", describe(name)));
                String::new()
            }
        };
        let mut account_var = |name: &str| {
            if has_account {
                required(name)
            } else {
                String::new()
            }
        };
        let endpoint = account_var("SM_API_ENDPOINT");
        let client_id = account_var("SM_CLIENT_ID");
        let api_key = account_var("SM_API_KEY");
        let api_secret = account_var("SM_API_SECRET");
        let owner = account_var("SM_OWNER");
        let origins = required("SM_ALLOWED_ORIGINS");
        let is_url = endpoint.starts_with("https://") || endpoint.starts_with("http://");
        if !endpoint.is_empty() && !is_url {
            errors.push(format!(
                "SM_API_ENDPOINT must be an http(s) URL, got \"{endpoint}\""
            ));
        }
        if !owner.is_empty() && !owner.contains('@') {
            errors.push(format!(
                "SM_OWNER must be an email address, got \"{owner}\""
            ));
        }
        let allowed_origins: Vec<String> = origins
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        for o in allowed_origins.iter().filter(|o| *o != "*") {
            let host = o
                .strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"));
            if host.is_none_or(|h| h.is_empty() || h.contains('/')) {
                errors.push(format!(
                    "SM_ALLOWED_ORIGINS: \"{o}\" is not an origin (scheme and host, such as https://store.example)"
                ));
            }
        }
        let listen = get("SM_LISTEN").unwrap_or_else(|| "127.0.0.1:8787".into());
        let listen = listen.trim().parse().unwrap_or_else(|_| {
            errors.push(format!(
                "SM_LISTEN must be an address such as 127.0.0.1:8787, got \"{listen}\""
            ));
            SocketAddr::from(([127, 0, 0, 1], 8787))
        });
        let mut number = |name: &str, default: u32| match get(name) {
            None => default,
            Some(v) => v.trim().parse().ok().filter(|n| *n > 0).unwrap_or_else(|| {
                errors.push(format!(
                    "{name} must be a whole number above 0, got \"{v}\""
                ));
                default
            }),
        };
        let rate_per_ip = number("SM_RATE_PER_IP", 600);
        let rate_per_origin = number("SM_RATE_PER_ORIGIN", 60_000);
        let claim_lease = Duration::from_secs(u64::from(number("SM_CLAIM_LEASE", 60)));
        let parallel_calls =
            number("SM_PARALLEL_CALLS", crate::forwarder::PARALLEL_LANES as u32).max(2) as usize;
        let keep_days = number("SM_KEEP_DAYS", 30);
        let rate_per_store = number("SM_RATE_PER_STORE", 6_000);
        if keep_days < 8 {
            errors.push(format!(
                "SM_KEEP_DAYS must be at least 8 (a tracker retries an event for 7 days, and a \
                 forgotten id would be delivered again), got {keep_days}"
            ));
        }
        let keep_finished = Duration::from_secs(u64::from(keep_days) * 24 * 3600);
        let mut flag = |name: &str| match get(name).as_deref().map(str::trim) {
            None | Some("" | "0" | "false" | "no") => false,
            Some("1" | "true" | "yes") => true,
            Some(v) => {
                errors.push(format!("{name} must be true or false, got \"{v}\""));
                false
            }
        };
        let trust_proxy = flag("SM_TRUST_PROXY");
        let allow_no_origin = flag("SM_ALLOW_NO_ORIGIN");
        let strategy = get("SM_SALLA_WEBHOOK_AUTH").map_or(Ok(Default::default()), |v| {
            v.parse::<crate::webhook::Strategy>()
        });
        let strategy = strategy.unwrap_or_else(|e| {
            errors.push(format!("SM_SALLA_WEBHOOK_AUTH {e}"));
            Default::default()
        });
        let secret_key = match get(crate::sealed::VARIABLE).filter(|v| !v.trim().is_empty()) {
            Some(v) => SealingKey::parse(&v)
                .map_err(|e| errors.push(e.to_string()))
                .ok(),
            None => {
                if webhook_secret.is_some() {
                    errors.push(no_secret_key());
                }
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Config {
            account: has_account.then(|| Account {
                endpoint: endpoint.trim_end_matches('/').to_owned(),
                client_id,
                api_key: Secret(api_key),
                api_secret: Secret(api_secret),
                owner,
            }),
            webhook: webhook_secret.map(|secret| crate::webhook::WebhookAuth {
                strategy,
                secret: Secret(secret),
            }),
            secret_key,
            salla_store_id: get("SM_SALLA_STORE_ID").map(|s| s.trim().to_owned()),
            allowed_origins,
            listen,
            data_dir: get("SM_DATA_DIR").map_or_else(|| PathBuf::from("data"), PathBuf::from),
            database_url: get("SM_DATABASE_URL")
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty()),
            claim_lease,
            parallel_calls,
            keep_finished,
            max_body_bytes: MAX_BODY_BYTES,
            rate_per_ip,
            rate_per_origin,
            rate_per_store,
            trust_proxy,
            allow_no_origin,
            contact_wait: Duration::from_secs(24 * 3600),
            contact_wait_max: 1000,
            account_probe: Duration::from_secs(60),
        })
    }

    /// Reads an env file with `dotenvy`, the dotenv format every tool documents: `KEY=VALUE`
    /// lines, `# comments` (also after a value, past a space), `export`, quotes (single quotes
    /// keep a `$` in a secret as written). A line it cannot read is named, with its number.
    pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
        dotenvy::from_read_iter(text.as_bytes())
            .map(|item| {
                item.map_err(|e| match e {
                    // dotenvy 0.15 joins the lines after an unclosed quote, and can take a quote in a
                    // comment (`x  # the account's host`) for one: name the line where it started,
                    // not all the lines it joined.
                    dotenvy::Error::LineParse(text, at) => {
                        let line = text.lines().next().unwrap_or("");
                        let more = if text.lines().nth(1).is_some() {
                            " (a quote on it is never closed: use no ' or \" in a comment)"
                        } else {
                            ""
                        };
                        format!("cannot read the line \"{line}\" at character {at}{more}")
                    }
                    other => other.to_string(),
                })
            })
            .collect()
    }
}

/// Why a receiver with webhooks on does not start without `SM_SECRET_KEY`, and how to make one.
pub fn no_secret_key() -> String {
    format!(
        "SM_SECRET_KEY is missing: with webhooks on (SM_SALLA_WEBHOOK_SECRET) the receiver keeps each \
         store's SALESmanago API key and secret, sealed with this key; {}, put it beside \
         SM_SALLA_WEBHOOK_SECRET (not in SM_DATA_DIR) and keep it: the same key at every start \
         (without it, every store must save its app settings again)",
        crate::sealed::HOW_TO_MAKE
    )
}

/// The env file's account: all of them, or (with webhooks on) none.
const ACCOUNT_VARIABLES: [&str; 5] = [
    "SM_API_ENDPOINT",
    "SM_CLIENT_ID",
    "SM_API_KEY",
    "SM_API_SECRET",
    "SM_OWNER",
];

fn describe(name: &str) -> &'static str {
    VARIABLES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const GOOD: &[(&str, &str)] = &[
        ("SM_API_ENDPOINT", "https://app3.salesmanago.pl/"),
        ("SM_CLIENT_ID", "client"),
        ("SM_API_KEY", "key"),
        ("SM_API_SECRET", "very-secret"),
        ("SM_OWNER", "owner@shop.example"),
        (
            "SM_ALLOWED_ORIGINS",
            "https://store.example, http://127.0.0.1:8080/",
        ),
    ];

    #[test]
    fn a_good_configuration_and_a_hidden_secret() {
        let c = Config::from_lookup(lookup(GOOD)).unwrap();
        assert_eq!(
            c.account.as_ref().unwrap().endpoint,
            "https://app3.salesmanago.pl"
        );
        assert!(c.webhook.is_none(), "off without a secret");
        assert_eq!(
            c.allowed_origins,
            ["https://store.example", "http://127.0.0.1:8080"]
        );
        assert!(!format!("{c:?}").contains("very-secret"));
        assert!(!c.allow_no_origin, "off unless asked for");
        assert_eq!(
            (c.rate_per_ip, c.rate_per_origin, c.rate_per_store),
            (600, 60_000, 6_000)
        );
    }

    #[test]
    fn every_missing_or_bad_value_is_named() {
        let errors = Config::from_lookup(lookup(&[
            ("SM_API_ENDPOINT", "app3.salesmanago.pl"),
            ("SM_OWNER", "nobody"),
            (
                "SM_ALLOWED_ORIGINS",
                "store.example, http://, https://a.example/path",
            ),
            ("SM_LISTEN", "everywhere"),
            ("SM_RATE_PER_IP", "lots"),
            ("SM_RATE_PER_STORE", "0"),
            ("SM_TRUST_PROXY", "maybe"),
            ("SM_ALLOW_NO_ORIGIN", "sometimes"),
        ]))
        .unwrap_err();
        let all = errors.join("\n");
        for needle in [
            "SM_CLIENT_ID is missing",
            "SM_API_KEY is missing",
            "SM_API_SECRET is missing",
            "SM_API_ENDPOINT must be an http(s) URL",
            "SM_OWNER must be an email address",
            "\"store.example\" is not an origin",
            "\"http:\" is not an origin",
            "\"https://a.example/path\" is not an origin",
            "SM_LISTEN must be an address",
            "SM_RATE_PER_IP must be a whole number above 0, got \"lots\"",
            "SM_RATE_PER_STORE must be a whole number above 0, got \"0\"",
            "SM_TRUST_PROXY must be true or false, got \"maybe\"",
            "SM_ALLOW_NO_ORIGIN must be true or false, got \"sometimes\"",
        ] {
            assert!(all.contains(needle), "{all}\n∌ {needle}");
        }
    }

    #[test]
    fn retention_and_parallel_calls_for_a_large_vendor() {
        let c = Config::from_lookup(lookup(GOOD)).unwrap();
        assert_eq!(
            (c.keep_finished.as_secs(), c.parallel_calls),
            (30 * 86_400, 8)
        );
        let mut more = GOOD.to_vec();
        more.extend([("SM_KEEP_DAYS", "8"), ("SM_PARALLEL_CALLS", "32")]);
        let c = Config::from_lookup(lookup(&more)).unwrap();
        assert_eq!(
            (c.keep_finished.as_secs(), c.parallel_calls),
            (8 * 86_400, 32)
        );
        let mut short = GOOD.to_vec();
        short.push(("SM_KEEP_DAYS", "7"));
        let errors = Config::from_lookup(lookup(&short)).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("SM_KEEP_DAYS must be at least 8")),
            "{errors:?}"
        );
    }

    #[test]
    fn env_files() {
        let pairs = Config::parse_env_file(
            "# comment\nSM_CLIENT_ID=abc   # trailing comment\nexport SM_OWNER=\"o@x.sa\"\n\nSM_API_SECRET='a$b#c'\nSM_LISTEN=1.2.3.4:80#not-a-comment\n",
        )
        .unwrap();
        assert_eq!(
            pairs,
            [
                ("SM_CLIENT_ID".into(), "abc".into()),
                ("SM_OWNER".into(), "o@x.sa".into()),
                ("SM_API_SECRET".into(), "a$b#c".into()),
                ("SM_LISTEN".into(), "1.2.3.4:80#not-a-comment".into()),
            ]
        );
        let error = Config::parse_env_file("SM_CLIENT_ID=abc\nbad line\n").unwrap_err();
        assert_eq!(error, "cannot read the line \"bad line\" at character 4");
        let error = Config::parse_env_file("A=x  # the shop's host\nC=z\n").unwrap_err();
        assert!(
            error.starts_with("cannot read the line \"A=x  # the shop's host\"")
                && error.ends_with("use no ' or \" in a comment)"),
            "{error}"
        );
    }

    /// A key as `openssl rand -base64 32` prints one.
    const KEY: &str = "e/YCdXTijB3G/e0/jg46CSysUq2CMCPmGaL3BNgXQjs=";

    #[test]
    fn webhooks_alone_or_with_the_env_account() {
        let mut cloud: Vec<(&str, &str)> = vec![
            ("SM_ALLOWED_ORIGINS", "*"),
            ("SM_SALLA_WEBHOOK_SECRET", "whsec"),
            ("SM_SECRET_KEY", KEY),
        ];
        let c = Config::from_lookup(lookup(&cloud)).unwrap();
        assert!(c.account.is_none());
        let w = c.webhook.as_ref().unwrap();
        assert_eq!(w.strategy, crate::webhook::Strategy::Signature);
        assert!(!format!("{c:?}").contains("whsec"));
        cloud.push(("SM_SALLA_WEBHOOK_AUTH", "Token"));
        cloud.push(("SM_CLIENT_ID", "half an account"));
        let errors = Config::from_lookup(lookup(&cloud)).unwrap_err().join("\n");
        assert!(errors.contains("SM_API_KEY is missing"), "{errors}");
        let mut both = GOOD.to_vec();
        both.extend([
            ("SM_SALLA_WEBHOOK_SECRET", "w"),
            ("SM_SALLA_WEBHOOK_AUTH", "token"),
            ("SM_SECRET_KEY", KEY),
        ]);
        let c = Config::from_lookup(lookup(&both)).unwrap();
        assert!(c.account.is_some());
        assert_eq!(c.webhook.unwrap().strategy, crate::webhook::Strategy::Token);
        let bad = Config::from_lookup(lookup(&[
            ("SM_ALLOWED_ORIGINS", "*"),
            ("SM_SALLA_WEBHOOK_SECRET", "w"),
            ("SM_SALLA_WEBHOOK_AUTH", "hmac"),
            ("SM_SECRET_KEY", KEY),
        ]))
        .unwrap_err();
        assert_eq!(
            bad,
            ["SM_SALLA_WEBHOOK_AUTH must be signature or token, got \"hmac\""]
        );
    }

    #[test]
    fn webhooks_need_the_secret_key_and_a_bad_one_is_named_never_shown() {
        let webhooks = [
            ("SM_ALLOWED_ORIGINS", "*"),
            ("SM_SALLA_WEBHOOK_SECRET", "whsec"),
        ];
        let errors = Config::from_lookup(lookup(&webhooks)).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("SM_SECRET_KEY is missing")
                && errors[0].contains("openssl rand -base64 32"),
            "{errors:?}"
        );
        // Also with the env file's account beside the webhooks: they still bring stores' settings.
        let mut both = GOOD.to_vec();
        both.push(("SM_SALLA_WEBHOOK_SECRET", "whsec"));
        let errors = Config::from_lookup(lookup(&both)).unwrap_err();
        assert!(
            errors[0].starts_with("SM_SECRET_KEY is missing"),
            "{errors:?}"
        );

        let mut bad = webhooks.to_vec();
        bad.push(("SM_SECRET_KEY", "c2hvcnQ="));
        let errors = Config::from_lookup(lookup(&bad)).unwrap_err().join("\n");
        assert!(
            errors.starts_with("SM_SECRET_KEY must be 32 bytes")
                && errors.contains("it holds 5 bytes"),
            "{errors}"
        );
        assert!(!errors.contains("c2hvcnQ="), "{errors}");
        let mut not_encoded = webhooks.to_vec();
        not_encoded.push(("SM_SECRET_KEY", "my secret key!"));
        let errors = Config::from_lookup(lookup(&not_encoded))
            .unwrap_err()
            .join("\n");
        assert!(errors.contains("its 14 characters are neither"), "{errors}");

        let mut good = webhooks.to_vec();
        good.push(("SM_SECRET_KEY", KEY));
        let c = Config::from_lookup(lookup(&good)).unwrap();
        assert!(c.secret_key.is_some());
        assert!(!format!("{c:?}").contains(KEY));
        // The env file's account alone stores no secret: no key needed.
        assert!(Config::from_lookup(lookup(GOOD))
            .unwrap()
            .secret_key
            .is_none());
    }
}
