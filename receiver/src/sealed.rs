//! A store's SALESmanago API key and secret, sealed at rest.
//!
//! The receiver keeps each store's credentials (from `app.settings.updated`) in its database, and a
//! copy of that file (a backup, a disk image, a stolen volume) must not hand out every store's
//! SALESmanago account. So the `api_key` and `api_secret` columns hold **sealed** text:
//! XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`) under a 32-byte key the operator gives in
//! `SM_SECRET_KEY`, which never touches the data directory.
//!
//! A sealed value reads `v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`:
//! - `v1` is the format, so that a later one can be told apart (and an older receiver says it
//!   cannot open it instead of sending it as a password);
//! - the key id is 8 hex characters of HMAC-SHA256(key, a fixed label): it says *which* key sealed
//!   the value, so a wrong `SM_SECRET_KEY` is told apart from a damaged value (it reveals nothing
//!   usable about a random 256-bit key);
//! - the nonce is 24 random bytes from the operating system, drawn for every seal: with
//!   XChaCha20's 192-bit nonce, random nonces never collide in practice, so no counter has to be
//!   kept;
//! - the associated data is the row: the store id, the client id and the field name. A sealed
//!   value copied into another store's row (or from `api_key` to `api_secret`) does not open.
//!
//! A value that does not start with a version (`v<digits>:`) is **clear text** written by an
//! earlier receiver: it is used as it is, and the store seals it again when it reads the tenants
//! at start (with the key set), so that it leaves the database at the next start, not only at the
//! store's next settings change ([`open_account_secrets`]).
//!
//! A tenant whose secrets cannot be opened (another key, a damaged value) does not stop the
//! receiver: it cannot deliver, its events are kept, and one log line names `SM_SECRET_KEY` and
//! what to do; the other tenants are served. The store saving its app settings again seals them
//! with the current key.
//!
//! Neither the key nor a secret is ever logged: [`SealingKey`]'s `Debug` prints `***`, and the
//! errors name key ids and rows only.

use crate::config::{Account, Secret};
use crate::tenants::{Status, StoreTenant};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// The environment variable that holds the key.
pub const VARIABLE: &str = "SM_SECRET_KEY";

/// How to make a key, for the messages that ask for one.
pub const HOW_TO_MAKE: &str = "make one with `openssl rand -base64 32`";

/// The format this receiver writes.
const VERSION: &str = "v1";
/// XChaCha20's nonce.
const NONCE_LEN: usize = 24;
/// Poly1305's tag.
const TAG_LEN: usize = 16;

/// The key that seals the stores' secrets. Its `Debug` never shows it; the cipher wipes it from
/// memory when dropped.
#[derive(Clone)]
pub struct SealingKey {
    cipher: XChaCha20Poly1305,
    id: String,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(***)")
    }
}

/// Why `SM_SECRET_KEY` is not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Neither 64 hex characters nor base64.
    #[error("SM_SECRET_KEY must be 32 bytes written as base64 (44 characters, as `openssl rand -base64 32` prints them) or as 64 hex characters; its {0} characters are neither")]
    Encoding(usize),
    /// Base64 or hex of another length.
    #[error("SM_SECRET_KEY must be 32 bytes (44 characters of base64, or 64 hex characters); it holds {0} bytes: {HOW_TO_MAKE}")]
    Length(usize),
}

/// Why a sealed value does not open. Each says what the operator can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The value is sealed, and the receiver has no key.
    #[error("it is sealed and SM_SECRET_KEY is not set: start the receiver with the SM_SECRET_KEY it was sealed with (key id {sealed_with})")]
    NoKey {
        /// The id of the key that sealed it.
        sealed_with: String,
    },
    /// Another key sealed it.
    #[error("SM_SECRET_KEY is not the key the secrets were sealed with (they were sealed with key id {sealed_with}, SM_SECRET_KEY is key id {current}): restart the receiver with that key, or have the store save its app settings again, which seals them with this one")]
    WrongKey {
        /// The id of the key that sealed it.
        sealed_with: String,
        /// The id of `SM_SECRET_KEY`.
        current: String,
    },
    /// The right key, and the value still does not open: it was altered, or belongs to another
    /// row.
    #[error("a sealed secret does not open for its row: it was altered, or copied from another store's row; have the store save its app settings again")]
    NotThisRow,
    /// Not a sealed value of any shape this receiver writes.
    #[error("a sealed secret is corrupted ({0}); have the store save its app settings again")]
    Corrupted(&'static str),
    /// A format this receiver does not know (a newer one sealed it).
    #[error("a secret is sealed in format {0}, which this receiver cannot open (a newer version wrote it): run that version")]
    UnknownVersion(String),
}

/// Where a sealed value belongs: it opens in that row and field only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row<'a> {
    /// The Salla store id.
    pub store_id: &'a str,
    /// The SALESmanago client id.
    pub client_id: &'a str,
    /// The column: `api_key` or `api_secret`.
    pub field: &'a str,
}

impl Row<'_> {
    /// The associated data: each part with its length, so that no two rows give the same bytes.
    fn associated_data(&self) -> Vec<u8> {
        let mut aad = Vec::new();
        for part in [
            "salla-salesmanago tenant secret",
            VERSION,
            self.store_id,
            self.client_id,
            self.field,
        ] {
            aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

impl SealingKey {
    /// The key of these 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> SealingKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes).expect("HMAC takes any key");
        mac.update(b"salla-salesmanago sealing key id");
        let id = hex::encode(&mac.finalize().into_bytes()[..4]);
        SealingKey {
            cipher: XChaCha20Poly1305::new(bytes.into()),
            id,
        }
    }

    /// A new random key (tests; an operator uses `openssl rand -base64 32`).
    pub fn generate() -> SealingKey {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        SealingKey::from_bytes(&key)
    }

    /// `SM_SECRET_KEY`'s value: 64 hex characters, or base64 (standard or URL-safe, padded or
    /// not) of 32 bytes. The error never shows the value.
    pub fn parse(text: &str) -> Result<SealingKey, KeyError> {
        let text = text.trim();
        let hex_text = text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit());
        let base64 = || {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
        };
        let decoded = match (hex_text && text.len() == 64, hex_text) {
            (true, _) => hex::decode(text).ok(),
            (false, true) => base64().or_else(|| hex::decode(text).ok()),
            (false, false) => base64(),
        }
        .map(Zeroizing::new)
        .ok_or(KeyError::Encoding(text.chars().count()))?;
        let bytes: &[u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Length(decoded.len()))?;
        Ok(SealingKey::from_bytes(bytes))
    }

    /// The key's id (8 hex characters), as sealed values name it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `secret` sealed for `row`: `v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`.
    pub fn seal(&self, secret: &Secret, row: Row<'_>) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = row.associated_data();
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any text shorter than 256 GiB");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{VERSION}:{}:{}", self.id, STANDARD.encode(bytes))
    }

    /// The secret `sealed` holds, if it was sealed with this key for `row`.
    pub fn open(&self, sealed: &str, row: Row<'_>) -> Result<Secret, OpenError> {
        let (key_id, data) = parts(sealed)?;
        if key_id != self.id {
            return Err(OpenError::WrongKey {
                sealed_with: key_id.to_owned(),
                current: self.id.clone(),
            });
        }
        let bytes = STANDARD
            .decode(data)
            .map_err(|_| OpenError::Corrupted("not base64"))?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Corrupted("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let aad = row.associated_data();
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| OpenError::NotThisRow)?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| OpenError::Corrupted("not text"))?;
        Ok(Secret::from(text))
    }
}

/// A stored value: sealed (with its version), or clear text from an earlier receiver.
fn is_sealed(stored: &str) -> bool {
    stored.split_once(':').is_some_and(|(version, _)| {
        version.len() >= 2
            && version.starts_with('v')
            && version[1..].bytes().all(|b| b.is_ascii_digit())
    })
}

/// The key id and the data of a sealed value of this format.
fn parts(sealed: &str) -> Result<(&str, &str), OpenError> {
    let (version, rest) = sealed
        .split_once(':')
        .ok_or(OpenError::Corrupted("no format"))?;
    if version != VERSION {
        return Err(OpenError::UnknownVersion(version.to_owned()));
    }
    let (key_id, data) = rest
        .split_once(':')
        .ok_or(OpenError::Corrupted("no key id"))?;
    if key_id.len() != 8 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(OpenError::Corrupted("no key id"));
    }
    Ok((key_id, data))
}

/// Opens `stored` for `row` with `key` (`None`: no `SM_SECRET_KEY`). Clear text from an earlier
/// receiver is answered as it is, with `true`: it is to be sealed.
fn open_stored(
    key: Option<&SealingKey>,
    stored: &Secret,
    row: Row<'_>,
) -> Result<(Secret, bool), OpenError> {
    let stored = stored.expose();
    if !is_sealed(stored) {
        return Ok((Secret::from(stored), true));
    }
    match key {
        Some(key) => key.open(stored, row).map(|s| (s, false)),
        None => {
            let (sealed_with, _) = parts(stored)?;
            Err(OpenError::NoKey {
                sealed_with: sealed_with.to_owned(),
            })
        }
    }
}

/// A tenant's `api_key` and `api_secret` as its row stores them.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecrets {
    /// The `api_key` column.
    pub api_key: String,
    /// The `api_secret` column.
    pub api_secret: String,
}

impl fmt::Debug for SealedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Sealed, so harmless; clear text is never in one. Still: nothing of it in a log.
        f.write_str("SealedSecrets(***)")
    }
}

/// Why a tenant's secrets cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SM_SECRET_KEY is not set, and a store's SALESmanago API key and secret are never stored in clear text: {HOW_TO_MAKE}, set it and restart")]
pub struct NoKey;

/// The `api_key` and `api_secret` columns of `tenant`'s row: its secrets sealed with `key` for
/// that row. `None` when the tenant has no account (incomplete settings).
pub fn seal_account_secrets(
    tenant: &StoreTenant,
    key: Option<&SealingKey>,
) -> Result<Option<SealedSecrets>, NoKey> {
    let Some(account) = &tenant.account else {
        return Ok(None);
    };
    let key = key.ok_or(NoKey)?;
    let row = |field| Row {
        store_id: &tenant.store_id,
        client_id: &tenant.client_id,
        field,
    };
    Ok(Some(SealedSecrets {
        api_key: key.seal(&account.api_key, row(crate::tenants::keys::API_KEY)),
        api_secret: key.seal(&account.api_secret, row(crate::tenants::keys::API_SECRET)),
    }))
}

/// What a tenant's problem starts with when its secrets cannot be opened.
pub const PROBLEM: &str = "the API key and secret stored for this store cannot be opened: ";

/// Whether `problem` (a tenant's) says its secrets cannot be opened.
pub fn is_sealing_problem(problem: &str) -> bool {
    problem.starts_with(PROBLEM)
}

/// Whether `tenant` cannot deliver because its secrets cannot be opened (and it would deliver
/// otherwise: not uninstalled).
pub fn unopened(tenant: &StoreTenant) -> bool {
    tenant.status != Status::Uninstalled
        && tenant.account.is_none()
        && tenant.problem.as_deref().is_some_and(is_sealing_problem)
}

/// Opens, in place, the secrets of `tenant` as read from its row (its account holds the stored
/// texts). When they cannot be opened, the tenant keeps no account and its
/// [`problem`](StoreTenant::problem) says why (it delivers nothing; its events are kept), and one
/// log line names `SM_SECRET_KEY`. Answers the secrets sealed anew when the row held them in clear
/// text (an earlier receiver's) and `key` is set: the caller writes them back.
pub fn open_account_secrets(
    tenant: &mut StoreTenant,
    key: Option<&SealingKey>,
) -> Option<SealedSecrets> {
    let account = tenant.account.as_ref()?;
    let row = |field| Row {
        store_id: &tenant.store_id,
        client_id: &tenant.client_id,
        field,
    };
    let opened = open_stored(key, &account.api_key, row(crate::tenants::keys::API_KEY)).and_then(
        |api_key| {
            open_stored(
                key,
                &account.api_secret,
                row(crate::tenants::keys::API_SECRET),
            )
            .map(|api_secret| (api_key, api_secret))
        },
    );
    match opened {
        Ok(((api_key, key_clear), (api_secret, secret_clear))) => {
            let account = Account {
                api_key,
                api_secret,
                ..account.clone()
            };
            tenant.account = Some(account);
            if !(key_clear || secret_clear) {
                return None;
            }
            if key.is_none() {
                tracing::warn!(
                    tenant = %tenant.key(),
                    "this store's SALESmanago API key and secret are stored in clear text (an earlier receiver's database): set SM_SECRET_KEY ({HOW_TO_MAKE}) to seal them"
                );
            }
            seal_account_secrets(tenant, key).ok().flatten()
        }
        Err(e) => {
            tenant.account = None;
            tenant.problem = Some(format!("{PROBLEM}{e}"));
            if tenant.status != Status::Uninstalled {
                tracing::error!(
                    tenant = %tenant.key(),
                    error = %e,
                    "SM_SECRET_KEY cannot open this store's sealed SALESmanago API key and secret: its delivery is paused, its events kept; the other stores are served"
                );
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const ROW: Row<'static> = Row {
        store_id: "1305",
        client_id: "client-a",
        field: "api_secret",
    };

    #[test]
    fn a_sealed_secret_opens_with_its_key_in_its_row_only() {
        let key = SealingKey::generate();
        let secret = Secret::from("the-api-secret");
        let sealed = key.seal(&secret, ROW);
        assert!(sealed.starts_with(&format!("v1:{}:", key.id())), "{sealed}");
        assert!(!sealed.contains("the-api-secret"));
        assert_ne!(key.seal(&secret, ROW), sealed, "a fresh nonce every time");
        assert_eq!(key.open(&sealed, ROW).unwrap(), secret);

        let other = SealingKey::generate();
        let wrong = other.open(&sealed, ROW).unwrap_err();
        assert_eq!(
            wrong,
            OpenError::WrongKey {
                sealed_with: key.id().into(),
                current: other.id().into()
            }
        );
        assert!(
            wrong
                .to_string()
                .starts_with("SM_SECRET_KEY is not the key the secrets were sealed with"),
            "{wrong}"
        );

        // Copied to another store's row, or to the other field: it does not open.
        for row in [
            Row {
                store_id: "1306",
                ..ROW
            },
            Row {
                client_id: "client-b",
                ..ROW
            },
            Row {
                field: "api_key",
                ..ROW
            },
        ] {
            assert_eq!(key.open(&sealed, row), Err(OpenError::NotThisRow));
        }
        // Parts that run together make different rows ("13" + "05x" is not "130" + "5x").
        let a = Row {
            store_id: "13",
            client_id: "05x",
            ..ROW
        };
        let b = Row {
            store_id: "130",
            client_id: "5x",
            ..ROW
        };
        assert_eq!(
            key.open(&key.seal(&secret, a), b),
            Err(OpenError::NotThisRow)
        );
    }

    #[test]
    fn a_changed_byte_anywhere_is_caught() {
        let key = SealingKey::generate();
        let sealed = key.seal(&Secret::from("s"), ROW);
        let (head, data) = sealed.rsplit_once(':').unwrap();
        let bytes = STANDARD.decode(data).unwrap();
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x01;
            let text = format!("{head}:{}", STANDARD.encode(changed));
            assert_eq!(key.open(&text, ROW), Err(OpenError::NotThisRow), "byte {i}");
        }
        let cut = format!(
            "{head}:{}",
            STANDARD.encode(&bytes[..NONCE_LEN + TAG_LEN - 1])
        );
        assert_eq!(key.open(&cut, ROW), Err(OpenError::Corrupted("too short")));
        assert_eq!(
            key.open(&format!("{head}:*not base64*"), ROW),
            Err(OpenError::Corrupted("not base64"))
        );
        assert_eq!(
            key.open(&sealed.replacen("v1:", "v2:", 1), ROW),
            Err(OpenError::UnknownVersion("v2".into()))
        );
        assert_eq!(
            key.open(&format!("v1:{data}"), ROW),
            Err(OpenError::Corrupted("no key id"))
        );
    }

    #[test]
    fn the_key_is_base64_or_hex_of_32_bytes_and_never_shown() {
        let bytes = [0xabu8; 32];
        let b64 = STANDARD.encode(bytes);
        let hex_key = hex::encode(bytes);
        let ids: Vec<String> = [
            b64.clone(),
            format!("  {b64}\n"),
            b64.trim_end_matches('=').to_owned(),
            URL_SAFE_NO_PAD.encode(bytes),
            hex_key.clone(),
            hex_key.to_uppercase(),
        ]
        .iter()
        .map(|t| SealingKey::parse(t).unwrap().id().to_owned())
        .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        // `openssl rand -base64 32` prints 44 characters.
        assert_eq!(b64.len(), 44);

        assert_eq!(
            SealingKey::parse(&STANDARD.encode([1u8; 16])).unwrap_err(),
            KeyError::Length(16)
        );
        assert_eq!(
            SealingKey::parse(&hex::encode([1u8; 33])).unwrap_err(),
            KeyError::Length(33)
        );
        assert_eq!(
            SealingKey::parse("correct horse battery staple").unwrap_err(),
            KeyError::Encoding(28)
        );
        let e = SealingKey::parse("zz").unwrap_err().to_string();
        assert!(e.starts_with("SM_SECRET_KEY must be 32 bytes"), "{e}");
        assert!(!e.contains("zz"), "the value is never shown: {e}");

        let key = SealingKey::parse(&b64).unwrap();
        let shown = format!("{key:?}");
        assert_eq!(shown, "SealingKey(***)");
        assert!(!shown.contains(&b64) && !shown.contains(&hex_key));
    }

    fn tenant(store: &str, client: &str) -> StoreTenant {
        let serde_json::Value::Object(settings) = serde_json::json!({
            "client_id": client, "api_key": format!("{client}-key"),
            "api_secret": format!("{client}-secret"), "owner": "o@x.example",
            "api_endpoint": "https://app3.salesmanago.pl"
        }) else {
            unreachable!()
        };
        crate::tenants::from_settings(store, &settings).unwrap()
    }

    #[test]
    fn account_secrets_sealed_for_their_row_and_opened_back() {
        let key = SealingKey::generate();
        let t = tenant("1", "client-a");
        assert_eq!(seal_account_secrets(&t, None), Err(NoKey));
        let sealed = seal_account_secrets(&t, Some(&key)).unwrap().unwrap();
        assert!(is_sealed(&sealed.api_key) && is_sealed(&sealed.api_secret));
        assert!(!format!("{sealed:?}").contains("v1"));
        // As read from the row.
        let stored = |s: &SealedSecrets| {
            let mut read = t.clone();
            let a = read.account.as_mut().unwrap();
            a.api_key = Secret::from(s.api_key.as_str());
            a.api_secret = Secret::from(s.api_secret.as_str());
            read
        };
        let mut read = stored(&sealed);
        assert_eq!(open_account_secrets(&mut read, Some(&key)), None);
        assert_eq!(read, t);

        // The key and the secret swapped between their columns: neither opens.
        let mut swapped = stored(&SealedSecrets {
            api_key: sealed.api_secret.clone(),
            api_secret: sealed.api_key.clone(),
        });
        assert_eq!(open_account_secrets(&mut swapped, Some(&key)), None);
        assert!(unopened(&swapped));
        assert!(swapped
            .problem
            .unwrap()
            .contains("copied from another store's row"));

        let mut wrong = stored(&sealed);
        open_account_secrets(&mut wrong, Some(&SealingKey::generate()));
        assert!(unopened(&wrong));
        let problem = wrong.problem.clone().unwrap();
        assert!(
            problem.starts_with(PROBLEM) && problem.contains("SM_SECRET_KEY is not the key"),
            "{problem}"
        );
        assert!(!problem.contains("client-a-secret") && !problem.contains("client-a-key"));

        let mut no_key = stored(&sealed);
        open_account_secrets(&mut no_key, None);
        assert!(no_key.problem.unwrap().contains("SM_SECRET_KEY is not set"));

        // Clear text from an earlier receiver: used as it is, and sealed anew when a key is set.
        let mut legacy = t.clone();
        let again = open_account_secrets(&mut legacy, Some(&key)).unwrap();
        assert_eq!(legacy, t);
        assert_eq!(
            key.open(
                &again.api_secret,
                Row {
                    store_id: "1",
                    client_id: "client-a",
                    field: "api_secret"
                }
            )
            .unwrap(),
            Secret::from("client-a-secret")
        );
        let mut legacy = t.clone();
        assert_eq!(open_account_secrets(&mut legacy, None), None);
        assert_eq!(legacy, t, "without a key clear text still works");
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("sm-sealed-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Every byte of the database's files (the WAL holds recent commits).
    fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("receiver.sqlite3")
            {
                all.extend(std::fs::read(path).unwrap());
            }
        }
        all
    }

    fn holds(bytes: &[u8], text: &str) -> bool {
        bytes.windows(text.len()).any(|w| w == text.as_bytes())
    }

    #[tokio::test]
    async fn a_database_with_clear_text_secrets_is_sealed_at_the_next_start() {
        let d = dir("legacy");
        {
            // An earlier receiver's tenants: the key and secret in clear text.
            Store::open(None, &d).await.unwrap().close().await;
            let db = rusqlite::Connection::open(d.join("receiver.sqlite3")).unwrap();
            db.execute_batch(
                "INSERT INTO tenants (store_id, client_id, endpoint, api_key, api_secret, owner, status, updated_at)
                 VALUES ('1', 'client-a', 'https://app3.salesmanago.pl', 'client-a-key', 'client-a-secret', 'o@x.example', 'active', 1),
                        ('2', 'client-b', 'https://app3.salesmanago.pl', 'client-b-key', 'client-b-secret', 'o@x.example', 'active', 2);",
            )
            .unwrap();
        }
        let bytes = database_bytes(&d);
        assert!(holds(&bytes, "client-a-secret"), "the test sees clear text");

        // Without a key they still work (a self-hosted receiver that had webhooks on before).
        let s = Store::open(None, &d).await.unwrap();
        assert_eq!(
            s.tenants().await.unwrap(),
            [tenant("1", "client-a"), tenant("2", "client-b")]
        );
        s.close().await;

        let key = SealingKey::generate();
        let s = Store::open(None, &d)
            .await
            .unwrap()
            .with_sealing_key(Some(key.clone()));
        assert_eq!(
            s.tenants().await.unwrap(),
            [tenant("1", "client-a"), tenant("2", "client-b")]
        );
        s.close().await;
        let bytes = database_bytes(&d);
        for clear in [
            "client-a-secret",
            "client-a-key",
            "client-b-secret",
            "client-b-key",
        ] {
            assert!(!holds(&bytes, clear), "{clear} left in the database");
        }
        assert!(holds(&bytes, "o@x.example"), "the rows are there");

        // Sealed now: the same key opens them, another does not (and nothing crashes).
        let s = Store::open(None, &d)
            .await
            .unwrap()
            .with_sealing_key(Some(key));
        assert_eq!(s.tenants().await.unwrap()[1], tenant("2", "client-b"));
        s.close().await;
        let s = Store::open(None, &d)
            .await
            .unwrap()
            .with_sealing_key(Some(SealingKey::generate()));
        let read = s.tenants().await.unwrap();
        assert!(read.iter().all(unopened), "{read:?}");
        // New settings seal with the key in use: the store works again.
        s.save_tenant(&tenant("1", "client-a"), 3).await.unwrap();
        assert_eq!(s.tenants().await.unwrap()[1], tenant("1", "client-a"));
    }
}
