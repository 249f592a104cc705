//! The tracker's words: the text of every message for the merchant and of the debug log.
//!
//! Every shopper downloads the wasm, and almost none ever reads a message: so in the wasm each
//! text is a two-byte token (`"\u{1}"` and the word's one-character code, unique: a test
//! checks), and the words themselves are `dist/messages.js`,
//! which the page loads only when debug is on or there is something to report
//! (`docs/configuration.md`, "Messages and the debug log"). Natively (tests, the receiver) each constant is its text, so a
//! message reads the same in a test as in the console. `npm run build` writes `messages.js` from
//! [`ALL`] (`cargo run --example messages`).
//!
//! Messages are put together from their pieces (`words::cat(&[words::X, name, words::Y])`);
//! only the fixed pieces live here. Short ones (`" → "`) stay inline: a token would be no
//! shorter.

macro_rules! words {
    ($($name:ident = $code:literal $text:literal,)*) => {
        $(
            #[cfg(target_arch = "wasm32")]
            #[allow(missing_docs)]
            pub const $name: &str = concat!("\u{1}", $code);
            #[cfg(not(target_arch = "wasm32"))]
            #[allow(missing_docs)]
            pub const $name: &str = $text;
        )*
        /// Every word by its token's code, for `dist/messages.js`.
        #[cfg(not(target_arch = "wasm32"))]
        pub const ALL: &[(&str, &str)] = &[$(($code, $text)),*];
    };
}

words! {
    // Configuration (crate::config)
    CONFIG_NOT_OBJECT = "0" "the tracker configuration must be an object",
    MISSING = "1" "is missing",
    TRACKER_OFF = "2" "; the tracker is off",
    SECRET = "3" "` must never be in a web page, where every visitor can read it: remove it and set it on the receiver; the tracker is off",
    UNKNOWN_KEY = "4" "unknown configuration key `",
    IGNORED = "5" "` ignored",
    CUSTOM_OVERRIDE = "6" "` in `events` is not a Salla catalog event; the override applies to a custom event of exactly that name",
    NO_MONITORING = "7" "; SALESmanago's monitoring script is not loaded",
    ON_THE_TAG = "8" " on the script tag)",
    MUST_BE_TEXT = "9" "must be text, got ",
    BAD_CLIENT_ID = "A" "must be the SALESmanago client id (no spaces, at most 64 characters), got \"",
    BAD_ENDPOINT = "B" "must be the receiver's URL, such as https://collect.example.com/collect, got \"",
    BAD_SM_HOST = "C" "must be your SALESmanago host, such as app3.salesmanago.com, got \"",
    LOCATION_TOO_LONG = "D" " characters (SALESmanago's limit; it must match your product feed's location), got ",
    MUST_BE_AT_MOST = "E" "must be at most ",
    MUST_BE_FLAG = "F" "must be true or false, got ",
    BAD_OVERRIDES = "G" "must be an object such as {\"Product Viewed\": \"OTHER\", \"Products Searched\": false} (on the script tag: valid JSON), got ",
    NOT_A_TYPE = "H" "\" is not a SALESmanago event type (use PURCHASE, CART, VISIT, OFFER, LOGIN, OTHER, …, true or false)",
    MUST_BE_A_TYPE = "I" "\" must be a type name, true or false, got ",
    UNUSABLE_ENTRIES = "J" "has unusable entries: ",
    // Events (crate::salla, crate::mapping)
    NO_NAME = "K" "an event without a name was not sent",
    AN_EVENT = "L" "an event",
    NOT_SENT = "M" " was not sent: ",
    NOT_AN_OBJECT = "N" "its payload must be an object, got ",
    MUST_BE = "O" "` must be ",
    GOT = "P" ", got ",
    SENT_WITHOUT_IT = "Q" "; sent without it",
    SWITCHED_OFF = "R" "switched off in the `events` configuration",
    OFF_BY_DEFAULT = "S" "off by default; switch it on with `events: {\"<name>\": true}`",
    CUSTOM_EVENTS_OFF = "T" "a custom event, and `customEvents` is off",
    // The debug log (crate::browser)
    NOT_SENT_BECAUSE = "U" ": not sent, ",
    ALREADY_SEEN = "V" ": already seen (event_id ",
    STORAGE_REFUSED_EVENT = "W" "the page's storage refused an event; this page's events are kept in memory",
    LEFT_THE_QUEUE = "X" " older event(s) left the queue (a newer cart replaced them, or the queue was full)",
    STORAGE_REFUSED_CART = "Y" "the page's storage refused the cart; it is kept for this page only",
    FROM_THE_BUS = "Z" " (the store's allow-list withholds it: taken from Twilight's event bus)",
    NO_BUS = "a" "Twilight's event bus (Salla.event.on) is not there: the events the store's allow-list (jitsu.events) withholds are not tracked",
    REGISTERED = "b" "registered with Salla's analytics",
    SIGNED_OUT = "c" "signed out: the smclient cookie deleted",
    MONITORING_ADDED = "d" "SALESmanago's monitoring script added",
    MONITORING_THERE = "e" "SALESmanago's monitoring script is already on the page",
    MONITORING_FAILED = "f" "SALESmanago's monitoring script could not be added",
    CONTACT_NOT_KEPT = "g" "the receiver named the contact; not kept: ",
    SIGNED_OUT_SINCE = "h" "signed out since",
    NO_COOKIE_CONSENT = "i" "no consent to cookies",
    CONTACT_KEPT = "j" " kept in the smclient cookie",
    CONSENT_GIVEN = "k" "consent given",
    CONSENT_REFUSED = "l" "consent refused: no email is sent",
    NOT_AN_EMAIL = "m" "identify: not an email address; ignored",
    ONLINE = "n" "online: sending resumes",
    OFFLINE = "o" "offline: sending paused",
    OFFLINE_WAITS = "p" "offline: sending waits for the connection",
    DAMAGED = "q" "a damaged stored event was removed",
    TOO_OLD = "r" " event(s) older than the maximum age dropped",
    HELD = "s" "the receiver holds ",
    OF = "t" " of ",
    HELD_REST = "u" " event(s) an earlier page sent; the rest go again",
    KEEPALIVE_FAILED = "v" "a keepalive request failed (a navigation, or the browser's quota): its events are asked about, then sent without keepalive if the receiver does not hold them",
    SENT = "w" "sent ",
    SENT_ANSWERED = "x" " event(s); the receiver answered ",
    REFUSED = "y" "the receiver refused ",
    REFUSED_WITH = "z" " event(s) with ",
    DROPPED = "!" "; they are dropped",
    ANSWERED = "#" "the receiver answered ",
    UNREACHABLE = "$" "the receiver could not be reached",
    RETRY_IN = "%" " event(s) retry in ",
    BEACON = "&" "page hidden: ",
    BEACON_TAKEN = "(" " event(s) handed to sendBeacon",
}

/// `dist/messages.js`: an ES module whose default export maps each token's name to its words.
#[cfg(not(target_arch = "wasm32"))]
pub fn module() -> String {
    let mut out = String::from(
        "// The tracker's words (src/words.rs), loaded only when there is something to say.\n\
         export default {",
    );
    for (code, text) in ALL {
        crate::value::write_json_string(code, &mut out);
        out.push(':');
        crate::value::write_json_string(text, &mut out);
        out.push(',');
    }
    out.push_str("};\n");
    out
}

/// The pieces of a message (or a key) joined: `[&str]::concat` for what the tracker writes,
/// without the standard library's generic joiner (~850 B of every shopper's wasm for a job
/// this small).
pub fn cat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

// Natively only: in the wasm the constants are codes.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_one_character_once_and_every_text_is_words() {
        let mut codes: Vec<&str> = ALL.iter().map(|(c, _)| *c).collect();
        assert!(codes
            .iter()
            .all(|c| c.chars().count() == 1 && *c != "\u{1}"));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len(), "a code twice");
        assert!(ALL
            .iter()
            .all(|(_, t)| !t.is_empty() && !t.contains('\u{1}')));
    }

    #[test]
    fn the_module_names_every_word() {
        let js = module();
        assert!(js.starts_with("// The tracker's words"));
        assert!(js.contains(r#":"sent ","#));
        assert!(js.contains(r#":"must be an object such as {\"Product Viewed\""#));
        let mut key = String::new();
        for (code, _) in ALL {
            key.clear();
            crate::value::write_json_string(code, &mut key);
            key.push(':');
            assert!(js.contains(&key), "{code}");
        }
    }
}
