//! One shopper's stream of events through the core: parse → cart → identity → map
//! (`docs/mapping.md`: §1 for duplicates, §3 for the cart, §4 for the contact).
//!
//! [`Pipeline`] holds the state the mapping needs between events (the cart, the email learnt at
//! sign-in, the event ids already seen) and nothing of the browser: the time, fresh ids, the
//! `smclient` contact id and consent come in as arguments, so every decision is reproducible in a
//! native test. The browser shell feeds it and sends what it returns.

use crate::cart::Cart;
use crate::config::Config;
use crate::contact::{looks_like_email, Shopper};
use crate::mapping::{self, Decision, Env, Skip};
use crate::protocol::{self, Contact, Envelope};
use crate::salesmanago::{limits, truncate, ContactEvent};
use crate::salla::{self, ParseError, SallaEvent, Warning};
use crate::tape::Tape;
use crate::value::Value;
use crate::words;

/// How many recent event ids are remembered to drop an event seen twice (Salla's hook and a DOM
/// event for the same action, or a history replay).
const SEEN_IDS: usize = 512;

/// The core's state for one shopper.
#[derive(Debug, Clone)]
pub struct Pipeline {
    config: Config,
    cart: Cart,
    /// Who the shopper said they are on this page (Signed In / Signed Up, `identify`).
    shopper: Shopper,
    /// Signed Out: the page's own record of the user (which may still name them until the page
    /// reloads) no longer counts either.
    signed_out: bool,
    /// (hash of the event_id, name, event_id) of the last [`SEEN_IDS`] events, a ring: when
    /// full, the entry at `oldest` is replaced (lookups do not care about order). The hash
    /// ([`protocol::id_tag`]) is compared first: every event of a storefront carries an id, and
    /// each was compared with the 512 before it.
    seen: Vec<(u32, String, String)>,
    oldest: usize,
    /// The tags in `seen`, or more: only a tag it may hold makes `remember` walk `seen`, and
    /// then it compares tags before ids (about one new id in ten is a false maybe, and a walk
    /// comparing ids was 3 µs of each event's time). Cleared and filled from `seen` each time
    /// the ring comes round.
    seen_tags: protocol::TagFilter,
    /// Hold each cart's CART back until [`Pipeline::release`] (see [`Pipeline::holding_carts`]).
    hold_carts: bool,
    /// The CART held back: for the cart held now, as of its last change.
    held: Option<Held>,
}

/// A cart event whose CART is held back: mapped when released, against the cart as it is then,
/// which is the cart as this event left it (see [`Pipeline::release`]).
#[derive(Debug, Clone)]
struct Held {
    event: SallaEvent,
    id: String,
    now_ms: u64,
}

/// The signed-in customer in the page's `salla.config.get("user")` (`type` "user": `email`,
/// `first_name`, `last_name`, `mobile`, `mobile_code`), read as leniently as a Signed In
/// payload; `None` for a guest, or for anything else.
pub fn page_user(user: &Value) -> Option<Shopper> {
    if user.get("type")?.as_str()? != "user" {
        return None;
    }
    match salla::parse("Signed In", &Tape::from(user)).ok()?.event {
        SallaEvent::SignedIn(account) => Some(account.shopper()).filter(|s| !s.is_empty()),
        _ => None,
    }
}

fn envelope(id: &str, name: &str, event: ContactEvent) -> Envelope {
    Envelope {
        id: truncate(id, limits::EXTERNAL_ID).to_owned(),
        source: name.to_owned(),
        event,
    }
}

/// What became of one incoming event.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// The event's name (canonical for catalog events).
    pub name: String,
    /// What to do.
    pub outcome: Outcome,
    /// Fields that were left out, each with its reason.
    pub warnings: Vec<Warning>,
    /// A CART held back that this event released: it goes out before this event's own.
    pub released: Option<Envelope>,
    /// The held cart may have changed (a cart event, or the order placed): the shell should
    /// store it.
    pub cart_changed: bool,
}

/// The decision for one incoming event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Send this.
    Send(Envelope),
    /// A CART, held back until [`Pipeline::release`]: a later change of the same cart replaces
    /// it.
    Held,
    /// Nothing to send, deliberately.
    Skipped(Skip),
    /// This event (same name, same `event_id`) was already processed.
    Duplicate(String),
    /// The payload could not be used.
    Rejected(ParseError),
}

impl Pipeline {
    /// A pipeline with an empty cart.
    pub fn new(config: Config) -> Self {
        Pipeline {
            config,
            cart: Cart::default(),
            shopper: Shopper::default(),
            signed_out: false,
            seen: Vec::new(),
            oldest: 0,
            seen_tags: protocol::TagFilter::default(),
            hold_carts: false,
            held: None,
        }
    }

    /// A pipeline that holds each cart's CART back until [`Pipeline::release`], so that a burst
    /// of changes to one cart is mapped and written once, for its last state. SALESmanago keeps
    /// one CART per cart and updates it in place, and the outbox replaces a CART still waiting
    /// by a newer one of the same cart (see [`crate::outbox`]): what is sent is the same, minus
    /// the work for the states nobody would see.
    pub fn holding_carts(mut self) -> Self {
        self.hold_carts = true;
        self
    }

    /// The CART held back, if any, mapped now. Nothing changed the cart since its event (a later
    /// change of the same cart replaced it; any other event released it first), so it says
    /// what it would have said then. The shell calls this at the end of every slice of work and
    /// before anything that reads or sends the queue.
    pub fn release(&mut self, env: &Env<'_>) -> Option<Envelope> {
        let held = self.held.take()?;
        self.map_held(held, env).ok()
    }

    /// Maps an event against the cart as it is now: the one place an event is mapped, whether
    /// it was held back or not (one copy of the mapping in the wasm).
    fn map_held(&self, held: Held, env: &Env<'_>) -> Result<Envelope, Skip> {
        let env = Env {
            now_ms: held.now_ms,
            ..*env
        };
        match mapping::map(&held.event, &self.cart, &self.config, &env) {
            Decision::Send(event) => Ok(envelope(&held.id, held.event.name(), event)),
            Decision::Skip(reason) => Err(reason),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The held cart.
    pub fn cart(&self) -> &Cart {
        &self.cart
    }

    /// Restores a cart kept from an earlier page.
    pub fn restore_cart(&mut self, cart: Cart) {
        self.cart = cart;
    }

    /// Processes one event, its payload read from its tape. `new_id` is called for an event
    /// that carries no `event_id`.
    pub fn process(
        &mut self,
        name: &str,
        payload: &Tape,
        env: &Env<'_>,
        new_id: impl FnOnce() -> String,
    ) -> Processed {
        let parsed = match salla::parse(name, payload) {
            Ok(p) => p,
            Err(e) => {
                return Processed {
                    name: e.event.clone(),
                    outcome: Outcome::Rejected(e),
                    warnings: Vec::new(),
                    released: None,
                    cart_changed: false,
                }
            }
        };
        let event = parsed.event;
        let name = event.name().to_owned();
        let id = match parsed.event_id {
            Some(id) => match self.remember(&name, id.clone()) {
                Some(id) => id,
                None => {
                    return Processed {
                        name,
                        outcome: Outcome::Duplicate(id),
                        warnings: parsed.warnings,
                        released: None,
                        cart_changed: false,
                    }
                }
            },
            None => new_id(),
        };

        // Held when its cart has an id to be updated by; a held CART of that same cart is
        // replaced, any other is released before this event changes the cart it describes.
        let after = self.cart.id_after(&event);
        let hold = self.hold_carts
            && matches!(after, Some(Some(_)))
            && mapping::stays_cart(&event, &self.config);
        let released = if hold && self.held.is_some() && after == Some(self.cart.id.as_deref()) {
            self.held = None;
            None
        } else {
            self.release(env)
        };
        let mut cart_changed = self.cart.apply(&event);
        self.learn_identity(&event);
        let order_placed = matches!(event, SallaEvent::OrderCompleted(_));
        let held = Held {
            event,
            id,
            now_ms: env.now_ms,
        };
        let outcome = if hold {
            self.held = Some(held);
            Outcome::Held
        } else {
            let mapped = self.map_held(held, env);
            if order_placed {
                self.cart.clear();
                cart_changed = true;
            }
            match mapped {
                Ok(envelope) => Outcome::Send(envelope),
                Err(reason) => Outcome::Skipped(reason),
            }
        };
        Processed {
            name,
            outcome,
            warnings: parsed.warnings,
            released,
            cart_changed,
        }
    }

    /// Records that `name` arrived with `event_id`. Returns the id to send it under, or `None` if
    /// this very event was processed before.
    ///
    /// An event is the pair (name, `event_id`), not the id alone: Salla builds Product Shared
    /// from the last Product Viewed payload, `event_id` included. The second event of such a
    /// pair is sent under a derived id, so a receiver that deduplicates by id keeps both.
    fn remember(&mut self, name: &str, event_id: String) -> Option<String> {
        // One pass, the id's hash compared first, then the id: ids differ early, names (a burst
        // of one event type) do not.
        let tag = protocol::id_tag(&event_id);
        let mut shared = false;
        if self.seen_tags.may_hold(tag) {
            for (t, n, id) in &self.seen {
                if *t == tag && *id == event_id {
                    if n == name {
                        return None;
                    }
                    shared = true;
                }
            }
        }
        let entry = (tag, name.to_owned(), event_id.clone());
        if self.seen.len() < SEEN_IDS {
            self.seen.push(entry);
        } else {
            self.seen[self.oldest] = entry;
            self.oldest = (self.oldest + 1) % SEEN_IDS;
            if self.oldest == 0 {
                // The tags of ids the ring has since dropped go; a tag stays in at most twice
                // the ring's time.
                self.seen_tags.clear();
                for (t, _, _) in &self.seen {
                    self.seen_tags.insert(*t);
                }
            }
        }
        self.seen_tags.insert(tag);
        Some(if shared {
            words::cat(&[&event_id, ":", name])
        } else {
            event_id
        })
    }

    fn learn_identity(&mut self, event: &SallaEvent) {
        match event {
            SallaEvent::SignedIn(a) | SallaEvent::SignedUp(a) => {
                let shopper = a.shopper();
                if !shopper.is_empty() {
                    // Another sign-in names the person anew: nothing of the one before is kept.
                    self.shopper = shopper;
                    self.signed_out = false;
                }
            }
            SallaEvent::SignedOut => {
                self.shopper = Shopper::default();
                self.signed_out = true;
            }
            _ => {}
        }
    }

    /// Sets the shopper's email (the `identify` API); an implausible address is ignored. A
    /// different email names another person: the name and phone learnt before are forgotten.
    pub fn identify(&mut self, email: &str) -> bool {
        let email = email.trim();
        let ok = looks_like_email(email);
        if ok {
            if self.shopper.email.as_deref() != Some(email) {
                self.shopper = Shopper::default();
            }
            self.shopper.email = Some(email.to_owned());
            self.signed_out = false;
        }
        ok
    }

    /// Whether the shopper signed out on this page (and has not signed in again): the `smclient`
    /// cookie then names the person who left, and the shell deletes it.
    pub fn signed_out(&self) -> bool {
        self.signed_out
    }

    /// The contact to name in a batch (`docs/mapping.md` §4): nobody when the shopper refused
    /// (`personal_data` false): the `smclient` id names a known person as surely as the email;
    /// nor the `smclient` id after Signed Out (the next shopper on this browser is someone else
    /// as far as the tracker knows); else the `smclient` id when there is one, and the email,
    /// name and phone only when `sendEmail` is on. They are what this page learnt (sign-in, `identify`), completed
    /// by the page's signed-in user (`salla.config.get("user")`, read at send time), unless the
    /// shopper signed out on this page.
    pub fn contact(
        &self,
        contact_id: Option<&str>,
        personal_data: bool,
        page_user: Option<&Shopper>,
    ) -> Contact {
        let contact_id = contact_id
            .filter(|_| personal_data && !self.signed_out)
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| truncate(id, limits::EXTERNAL_ID).to_owned());
        if !(self.config.send_email && personal_data) {
            return Contact {
                contact_id,
                ..Contact::default()
            };
        }
        let page_user = page_user.filter(|_| !self.signed_out);
        let shopper = self.shopper.completed_by(page_user);
        Contact {
            contact_id,
            email: shopper.email,
            name: shopper.name,
            phone: shopper.phone,
        }
    }
}
