//! Who may call the webhook route: Salla, proven by the app's webhook secret in one of the two
//! ways a Salla app can be set to (docs/webhooks.md §2).
//!
//! - **Signature**: `X-Salla-Signature` is the hex HMAC-SHA256 of the raw body with the secret.
//!   Checked with `Mac::verify_slice`, which compares in constant time.
//! - **Token**: `Authorization` is the secret itself (also taken as `Bearer <secret>`). Compared
//!   with `subtle`'s constant-time equality.
//!
//! The strategy is the operator's setting, never the request's: a request that claims another
//! strategy (`X-Salla-Security-Strategy`) is checked the configured way all the same.

use crate::config::Secret;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;

/// How Salla proves a webhook call is its own (the app's "Webhooks security strategy").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// `X-Salla-Signature`: hex HMAC-SHA256 of the raw body (Salla's default).
    #[default]
    Signature,
    /// `Authorization`: the secret itself.
    Token,
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "signature" => Ok(Strategy::Signature),
            "token" => Ok(Strategy::Token),
            other => Err(format!("must be signature or token, got \"{other}\"")),
        }
    }
}

/// The webhook route's credentials: the strategy and the app's webhook secret.
#[derive(Debug, Clone)]
pub struct WebhookAuth {
    /// How calls prove themselves.
    pub strategy: Strategy,
    /// The app's webhook secret (Partners Portal → the app → Webhooks); never logged.
    pub secret: Secret,
}

/// Why a call was not taken as Salla's. The words never include the secret or what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The header the strategy needs is absent.
    Missing(&'static str),
    /// `X-Salla-Signature` is not hex.
    NotHex,
    /// The signature or token does not match the secret.
    Mismatch,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing(h) => write!(f, "the {h} header is missing"),
            AuthError::NotHex => f.write_str("X-Salla-Signature is not a hex HMAC-SHA256"),
            AuthError::Mismatch => {
                f.write_str("the signature or token does not match the webhook secret")
            }
        }
    }
}

/// The `X-Salla-Signature` header.
pub const SIGNATURE: &str = "x-salla-signature";

impl WebhookAuth {
    /// Whether `body` with `headers` comes from Salla.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .map(|v| v.as_bytes())
                .ok_or(AuthError::Missing(name))
        };
        match self.strategy {
            Strategy::Signature => {
                let given = header(SIGNATURE)?;
                let given = hex::decode(given.trim_ascii()).map_err(|_| AuthError::NotHex)?;
                let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose().as_bytes())
                    .expect("HMAC takes a key of any length");
                mac.update(body);
                mac.verify_slice(&given).map_err(|_| AuthError::Mismatch)
            }
            Strategy::Token => {
                let given = header("authorization")?;
                let given = given.strip_prefix(b"Bearer ").unwrap_or(given);
                let same: bool = given.ct_eq(self.secret.expose().as_bytes()).into();
                same.then_some(()).ok_or(AuthError::Mismatch)
            }
        }
    }
}

/// The hex HMAC-SHA256 of `body` with `secret`, as Salla writes `X-Salla-Signature` (for tests
/// and tools that play Salla).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth(strategy: Strategy) -> WebhookAuth {
        WebhookAuth {
            strategy,
            secret: Secret::from("s3cret"),
        }
    }

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn hmac_sha256_known_answer() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signature_of_the_raw_body_with_the_secret_passes_and_nothing_else() {
        let a = auth(Strategy::Signature);
        let body = br#"{"event":"order.created"}"#;
        let good = sign("s3cret", body);
        assert_eq!(a.verify(&with(SIGNATURE, &good), body), Ok(()));
        assert_eq!(
            a.verify(&with(SIGNATURE, &good.to_uppercase()), body),
            Ok(()),
            "hex in capitals is the same signature"
        );
        assert_eq!(
            a.verify(&with(SIGNATURE, &good), br#"{"event":"order.created" }"#),
            Err(AuthError::Mismatch),
            "the raw body, not its meaning"
        );
        assert_eq!(
            a.verify(&with(SIGNATURE, &sign("other", body)), body),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            a.verify(&with(SIGNATURE, "zz"), body),
            Err(AuthError::NotHex)
        );
        assert_eq!(
            a.verify(&with(SIGNATURE, &good[..10]), body),
            Err(AuthError::Mismatch),
            "a prefix is not the signature"
        );
        assert_eq!(
            a.verify(&with("authorization", "s3cret"), body),
            Err(AuthError::Missing(SIGNATURE)),
            "a token does not pass where a signature is required"
        );
    }

    #[test]
    fn a_token_equal_to_the_secret_passes_and_nothing_else() {
        let a = auth(Strategy::Token);
        assert_eq!(a.verify(&with("authorization", "s3cret"), b"{}"), Ok(()));
        assert_eq!(
            a.verify(&with("authorization", "Bearer s3cret"), b"{}"),
            Ok(())
        );
        for wrong in ["s3cre", "s3cret ", "S3CRET", "Bearer other", ""] {
            assert_eq!(
                a.verify(&with("authorization", wrong), b"{}"),
                Err(AuthError::Mismatch),
                "{wrong:?}"
            );
        }
        assert_eq!(
            a.verify(&with(SIGNATURE, &sign("s3cret", b"{}")), b"{}"),
            Err(AuthError::Missing("authorization"))
        );
    }

    #[test]
    fn strategies_by_name() {
        assert_eq!("Signature".parse(), Ok(Strategy::Signature));
        assert_eq!(" token ".parse(), Ok(Strategy::Token));
        assert!("hmac".parse::<Strategy>().is_err());
    }
}
