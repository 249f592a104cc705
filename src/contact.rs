//! Who the events are about (`docs/mapping.md` §4): SALESmanago's contact id from the
//! `smclient` cookie, and the rules for when an email may be sent.

/// The value of cookie `name` in a `document.cookie` string, if set and not empty.
pub fn cookie_value<'a>(cookies: &'a str, name: &str) -> Option<&'a str> {
    cookies.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name)
            .then(|| v.trim())
            .filter(|v| !v.is_empty())
    })
}

/// What Salla's cookie bar recorded (`Salla.storage.get('cookies-consent')`, or its
/// `salla-cookies-bar::accepted|rejected` events). Only an explicit refusal withholds the email:
/// SALESmanago's own script already identifies the shopper, and `sendEmail` is off by default.
pub fn consent_allows_email(consent: Option<&str>) -> bool {
    consent != Some("rejected")
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
    fn only_a_refusal_withholds_the_email() {
        assert!(consent_allows_email(None));
        assert!(consent_allows_email(Some("accepted")));
        assert!(!consent_allows_email(Some("rejected")));
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
}
