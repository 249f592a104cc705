//! Who the events are about (`docs/mapping.md` §4): this browser's anonymous id, SALESmanago's
//! contact id from the `smclient` cookie, the shopper's email, name and phone, and what the
//! shopper's consent allows the tracker to send, write and load.

use crate::salesmanago::truncate;
use crate::words;

/// The longest anonymous id (`docs/protocol.md` §1).
pub const ANONYMOUS_ID_MAX: usize = crate::protocol::HEAD_ID_MAX;
/// The longest contact field (`contact.name`, `contact.phone`, the `smclient` contact id).
pub const CONTACT_FIELD_MAX: usize = 255;
/// The `smclient` cookie's life: 10 years, as SALESmanago's own plugins write it.
pub const SMCLIENT_MAX_AGE_S: u64 = 315_360_000;

/// The value of cookie `name` in a `document.cookie` string, if set and not empty.
pub fn cookie_value<'a>(cookies: &'a str, name: &str) -> Option<&'a str> {
    cookies.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name)
            .then(|| v.trim())
            .filter(|v| !v.is_empty())
    })
}

/// Text of 1 to `max` characters of `A-Z a-z 0-9 . _ : -`: the anonymous id's rule, and what the
/// tracker writes into a cookie (nothing there needs escaping).
pub fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A fresh anonymous id from 128 random bits (the caller's randomness), as 32 hex digits.
pub fn new_anonymous_id(random: [u8; 16]) -> String {
    crate::protocol::hex(&random)
}

/// This browser's anonymous id at send time (`docs/mapping.md` §4): the one kept from before
/// (`stored`), so that it stays the same from page to page; for a browser that has none yet,
/// Salla's own (`Salla.analytics.getAnonymousId()`) when it offers one that fits the protocol's
/// rule, so that our id matches Salla's analytics; else a fresh one. Salla's is not followed
/// once ours is kept: its analytics makes a new id when the shopper answers the cookie bar, and
/// on every page where its cookie cannot be kept, and the receiver ties waiting events to ours.
/// Returns the id and whether it must be kept (it is not `stored`).
pub fn anonymous_id(
    salla: Option<&str>,
    stored: Option<&str>,
    fresh: impl FnOnce() -> String,
) -> (String, bool) {
    let valid = |id: &&str| is_token(id, ANONYMOUS_ID_MAX);
    match (stored.filter(valid), salla.filter(valid)) {
        (Some(kept), _) => (kept.to_owned(), false),
        (None, Some(salla)) => (salla.to_owned(), true),
        (None, None) => (fresh(), true),
    }
}

/// What the shopper allowed, as the page says it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// The shopper refused: no email, name or phone is sent, no cookie written, no script loaded.
    Refused,
    /// The store asks (Salla's cookie bar) and the shopper has not answered yet: personal data
    /// may be sent (as before the bar existed), but nothing is written or loaded.
    Undecided,
    /// The shopper accepted, or the store does not ask (it has no cookie bar).
    Given,
}

/// What the page tells about consent, read at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsentFacts<'a> {
    /// The page's own word (`setConsent`), which overrides everything else.
    pub page: Option<bool>,
    /// The store shows Salla's cookie bar (`store.features` has `website-cookies`), or the page
    /// cannot tell.
    pub bar: bool,
    /// What the bar recorded (`Salla.storage.get('cookies-consent')`): `accepted` / `rejected`.
    pub recorded: Option<&'a str>,
    /// `document.cookie`, for the bar's per-category cookies.
    pub cookies: &'a str,
}

/// The cookie category SALESmanago's uses belong to: its monitoring script and the `smclient`
/// cookie follow a shopper across visits to tie them to a contact for marketing (mailings,
/// recommendations, retargeting), which is what the bar's advertising category covers; the
/// performance category is for measuring the shop itself (`docs/mapping.md` §4).
pub const CONSENT_CATEGORY: &str = "advertising_cookies";

impl ConsentFacts<'_> {
    /// The shopper's consent for what SALESmanago does. An explicit refusal anywhere wins: the
    /// bar's "rejected", or its advertising category switched off (saving custom choices records
    /// "accepted" even with only the necessary cookies on).
    pub fn consent(&self) -> Consent {
        if let Some(page) = self.page {
            return if page {
                Consent::Given
            } else {
                Consent::Refused
            };
        }
        let category_off = cookie_value(self.cookies, CONSENT_CATEGORY).is_some_and(|v| {
            ["false", "0", "no", "off", "rejected", "denied"]
                .iter()
                .any(|off| v.eq_ignore_ascii_case(off))
        });
        match self.recorded {
            Some("rejected") => Consent::Refused,
            _ if category_off => Consent::Refused,
            Some("accepted") => Consent::Given,
            _ if self.bar => Consent::Undecided,
            _ => Consent::Given,
        }
    }
}

impl Consent {
    /// Personal data (email, name, phone) may be sent, where the merchant's `sendEmail` is on.
    pub fn allows_personal_data(self) -> bool {
        self != Consent::Refused
    }

    /// The tracker may write the `smclient` cookie and load SALESmanago's monitoring script.
    pub fn allows_cookies(self) -> bool {
        self == Consent::Given
    }
}

/// The `document.cookie` assignment that keeps SALESmanago's contact id in `smclient`, as its own
/// plugins write it; `None` when nothing is to be written: the id is not one a cookie can hold
/// as it is, or the cookie already holds it.
pub fn smclient_cookie(contact_id: &str, current: Option<&str>, https: bool) -> Option<String> {
    if !is_token(contact_id, CONTACT_FIELD_MAX) || current == Some(contact_id) {
        return None;
    }
    let mut cookie = words::cat(&["smclient=", contact_id, "; path=/; max-age="]);
    crate::number::push_uint(SMCLIENT_MAX_AGE_S, &mut cookie);
    cookie.push_str("; SameSite=Lax");
    if https {
        cookie.push_str("; Secure");
    }
    Some(cookie)
}

/// A plausible email address: one `@`, something before it, a dotted domain after it, no white
/// space, at most 254 characters. Not RFC 5322; enough to keep junk out of SALESmanago.
pub fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// The shopper as Salla describes them, each field checked: from a `Signed In` / `Signed Up`
/// payload, the page's `identify`, or `salla.config.get("user")`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shopper {
    /// An email address ([`looks_like_email`]).
    pub email: Option<String>,
    /// First and last name, 1–255 characters.
    pub name: Option<String>,
    /// The mobile number, `+` and 7–15 digits ([`phone`]).
    pub phone: Option<String>,
}

/// Salla's fields for a shopper, as text (`first_name`, `last_name`, `mobile`, `mobile_code`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SallaUser<'a> {
    /// `email`.
    pub email: Option<&'a str>,
    /// `first_name`.
    pub first_name: Option<&'a str>,
    /// `last_name`.
    pub last_name: Option<&'a str>,
    /// `mobile`: the national number, or the whole number with `+`/`00`.
    pub mobile: Option<&'a str>,
    /// `mobile_code`: the country calling code (`+966`, `966`).
    pub mobile_code: Option<&'a str>,
}

impl Shopper {
    /// The shopper Salla's fields describe; what is not usable is left out.
    pub fn from_salla(u: SallaUser<'_>) -> Shopper {
        let first = u.first_name.map(str::trim).unwrap_or_default();
        let last = u.last_name.map(str::trim).unwrap_or_default();
        let name = words::cat(&[first, if first.is_empty() { "" } else { " " }, last]);
        let name = truncate(name.trim(), CONTACT_FIELD_MAX);
        Shopper {
            email: u
                .email
                .map(str::trim)
                .filter(|e| looks_like_email(e))
                .map(str::to_owned),
            name: (!name.is_empty()).then(|| name.to_owned()),
            phone: u.mobile.and_then(|m| phone(u.mobile_code, m)),
        }
    }

    /// Names nobody.
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.name.is_none() && self.phone.is_none()
    }

    /// This shopper, completed with what `other` knows of the same person: not when both name
    /// an email and the emails differ (two people), nor when `other` is `None`.
    pub fn completed_by(&self, other: Option<&Shopper>) -> Shopper {
        let Some(other) = other else {
            return self.clone();
        };
        if matches!((&self.email, &other.email), (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b)) {
            return self.clone();
        }
        let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        Shopper {
            email: pick(&self.email, &other.email),
            name: pick(&self.name, &other.name),
            phone: pick(&self.phone, &other.phone),
        }
    }
}

/// A mobile number as the protocol carries it: `+` then the country code and number, 7–15
/// digits (E.164). Built from Salla's `mobile_code` and `mobile`: spaces, dashes, dots and
/// brackets are dropped, Arabic-Indic digits read, the national trunk `0` before the number
/// dropped (`0501234567` with `+966` is `+966501234567`). A `mobile` that already starts with
/// `+` or `00` is whole. Without a country code a national number cannot be placed: `None`.
pub fn phone(code: Option<&str>, mobile: &str) -> Option<String> {
    // The digits of `s`, separators dropped; `None` for anything else.
    fn digits(s: &str) -> Option<String> {
        let mut out = String::new();
        for c in s.chars() {
            if !matches!(c, ' ' | '-' | '.' | '(' | ')') {
                out.push(char::from(b'0' + crate::number::digit(c)? as u8));
            }
        }
        Some(out)
    }
    let mobile = mobile.trim();
    let whole = if let Some(rest) = mobile.strip_prefix('+') {
        digits(rest)?
    } else {
        let national = digits(mobile)?;
        match national.strip_prefix("00") {
            Some(rest) => rest.to_owned(),
            None => {
                let code = code?.trim();
                let code = digits(code.strip_prefix('+').unwrap_or(code))?;
                let code = code.trim_start_matches('0');
                if code.is_empty() {
                    return None;
                }
                words::cat(&[code, national.trim_start_matches('0')])
            }
        }
    };
    ((7..=15).contains(&whole.len()) && !whole.starts_with('0')).then(|| words::cat(&["+", &whole]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_smclient_cookie() {
        let jar = "a=1; smclient=8f3e-77; smuuid=x";
        assert_eq!(cookie_value(jar, "smclient"), Some("8f3e-77"));
        assert_eq!(cookie_value("smclient=", "smclient"), None);
        assert_eq!(cookie_value("xsmclient=1", "smclient"), None);
        assert_eq!(cookie_value("", "smclient"), None);
    }

    #[test]
    fn email_plausibility() {
        assert!(looks_like_email("noura@example.sa"));
        assert!(!looks_like_email("noura@example"));
        assert!(!looks_like_email("@example.sa"));
        assert!(!looks_like_email("a b@example.sa"));
        assert!(!looks_like_email("a@b@example.sa"));
        assert!(!looks_like_email("a@example.sa."));
    }

    #[test]
    fn anonymous_id_keeps_ours_else_takes_sallas() {
        let fresh = || "fresh".to_owned();
        assert_eq!(anonymous_id(None, None, fresh), ("fresh".into(), true));
        assert_eq!(
            anonymous_id(Some("salla-1"), None, fresh),
            ("salla-1".into(), true),
            "a new browser takes Salla's id, and keeps it"
        );
        assert_eq!(
            anonymous_id(None, Some("kept"), fresh),
            ("kept".into(), false)
        );
        assert_eq!(
            anonymous_id(Some("salla-2"), Some("kept"), fresh),
            ("kept".into(), false),
            "a kept id stays when Salla's changes"
        );
        for bad in ["", "has space", "ü", &"x".repeat(65), "a/b"] {
            assert_eq!(
                anonymous_id(Some(bad), None, fresh),
                ("fresh".into(), true),
                "{bad:?}"
            );
            assert_eq!(
                anonymous_id(Some("salla-1"), Some(bad), fresh),
                ("salla-1".into(), true),
                "{bad:?}"
            );
        }
        assert!(is_token(&"x".repeat(64), ANONYMOUS_ID_MAX));
        assert!(is_token("a.b_c:d-E9", ANONYMOUS_ID_MAX));
    }

    #[test]
    fn fresh_anonymous_ids_are_128_bits_of_hex() {
        let id = new_anonymous_id([0xab; 16]);
        assert_eq!(id, "ab".repeat(16));
        assert!(is_token(&id, ANONYMOUS_ID_MAX));
    }

    fn facts<'a>(
        page: Option<bool>,
        bar: bool,
        recorded: Option<&'a str>,
        cookies: &'a str,
    ) -> Consent {
        ConsentFacts {
            page,
            bar,
            recorded,
            cookies,
        }
        .consent()
    }

    #[test]
    fn consent() {
        use Consent::*;
        assert_eq!(
            facts(None, false, None, ""),
            Given,
            "a store without the bar does not ask"
        );
        assert_eq!(facts(None, true, None, ""), Undecided);
        assert_eq!(facts(None, true, Some("accepted"), ""), Given);
        assert_eq!(facts(None, true, Some("rejected"), ""), Refused);
        assert_eq!(facts(None, false, Some("rejected"), ""), Refused);
        assert_eq!(
            facts(
                None,
                true,
                Some("accepted"),
                "performance_cookies=true; advertising_cookies=false"
            ),
            Refused,
            "custom choices with advertising off record \"accepted\""
        );
        assert_eq!(
            facts(None, true, Some("accepted"), "advertising_cookies=true"),
            Given
        );
        assert_eq!(
            facts(Some(true), true, Some("rejected"), ""),
            Given,
            "the page's word wins"
        );
        assert_eq!(facts(Some(false), false, None, ""), Refused);
        assert!(Undecided.allows_personal_data() && !Undecided.allows_cookies());
        assert!(!Refused.allows_personal_data() && !Refused.allows_cookies());
        assert!(Given.allows_personal_data() && Given.allows_cookies());
    }

    #[test]
    fn the_smclient_cookie_as_salesmanago_writes_it() {
        assert_eq!(
            smclient_cookie("c-123", None, false).as_deref(),
            Some("smclient=c-123; path=/; max-age=315360000; SameSite=Lax")
        );
        assert_eq!(
            smclient_cookie("c-123", Some("old"), true).as_deref(),
            Some("smclient=c-123; path=/; max-age=315360000; SameSite=Lax; Secure")
        );
        assert_eq!(
            smclient_cookie("c-123", Some("c-123"), true),
            None,
            "unchanged"
        );
        for bad in ["", "a;b", "a b", "x=1"] {
            assert_eq!(smclient_cookie(bad, None, true), None, "{bad:?}");
        }
    }

    #[test]
    fn phones_from_salla_fields() {
        let p = |code: Option<&str>, mobile: &str| phone(code, mobile);
        assert_eq!(
            p(Some("+966"), "501234567").as_deref(),
            Some("+966501234567")
        );
        assert_eq!(
            p(Some("966"), "0501234567").as_deref(),
            Some("+966501234567")
        );
        assert_eq!(
            p(Some("00966"), "50 123-4567").as_deref(),
            Some("+966501234567")
        );
        assert_eq!(
            p(None, "+966 50 123 4567").as_deref(),
            Some("+966501234567")
        );
        assert_eq!(
            p(Some("+20"), "00966501234567").as_deref(),
            Some("+966501234567")
        );
        assert_eq!(
            p(Some("+966"), "٥٠١٢٣٤٥٦٧").as_deref(),
            Some("+966501234567")
        );
        assert_eq!(
            p(None, "0501234567"),
            None,
            "a national number without its country"
        );
        assert_eq!(p(Some("+966"), "50abc"), None);
        assert_eq!(p(Some("+966"), "12"), None, "too short");
        assert_eq!(p(Some("+966"), &"1".repeat(20)), None, "too long");
    }

    #[test]
    fn shoppers_from_salla() {
        let s = Shopper::from_salla(SallaUser {
            email: Some(" noura@example.sa "),
            first_name: Some("نورة"),
            last_name: Some(" العتيبي "),
            mobile: Some("501234567"),
            mobile_code: Some("+966"),
        });
        assert_eq!(
            s,
            Shopper {
                email: Some("noura@example.sa".into()),
                name: Some("نورة العتيبي".into()),
                phone: Some("+966501234567".into()),
            }
        );
        let only_last = Shopper::from_salla(SallaUser {
            last_name: Some("X"),
            email: Some("bad"),
            ..SallaUser::default()
        });
        assert_eq!(
            only_last,
            Shopper {
                name: Some("X".into()),
                ..Shopper::default()
            }
        );
        assert!(Shopper::from_salla(SallaUser::default()).is_empty());
    }

    #[test]
    fn a_shopper_is_completed_by_the_same_person_only() {
        let learnt = Shopper {
            email: Some("a@b.sa".into()),
            ..Shopper::default()
        };
        let page = Shopper {
            email: Some("A@b.sa".into()),
            name: Some("N".into()),
            phone: Some("+966501234567".into()),
        };
        let got = learnt.completed_by(Some(&page));
        assert_eq!(
            (got.email.as_deref(), got.name.as_deref()),
            (Some("a@b.sa"), Some("N"))
        );
        let other = Shopper {
            email: Some("z@b.sa".into()),
            ..page.clone()
        };
        assert_eq!(learnt.completed_by(Some(&other)), learnt);
        assert_eq!(
            Shopper::default().completed_by(Some(&page)),
            page,
            "mobile-only or nothing learnt: the page's"
        );
        assert_eq!(learnt.completed_by(None), learnt);
    }
}
