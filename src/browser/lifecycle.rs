//! The page's life as it concerns sending: hidden or left (what is waiting goes to
//! `sendBeacon`), and the connection lost or back (sending pauses and resumes).

use super::handle::Listener;
use super::inbox::Command;
use super::page::{fact, Fact};
use super::{sender, Shared, State};
use crate::words;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::Window;

/// Listens for the page being hidden or left, and for the connection.
pub fn listen(shared: &Rc<Shared>, window: &Window, listeners: &mut Vec<Listener>) {
    let exit = {
        let weak = Rc::downgrade(shared);
        move |_| {
            if let Some(s) = weak.upgrade() {
                s.post_now(Command::Exit);
            }
        }
    };
    listeners.push(Listener::new(
        window,
        "pagehide",
        &shared.guard,
        exit.clone(),
    ));
    if let Ok(document) = js_sys::Reflect::get(window, &"document".into()) {
        listeners.push(Listener::new(
            document.unchecked_ref(),
            "visibilitychange",
            &shared.guard,
            move |e| {
                if fact(Fact::Visibility).as_deref() == Some("hidden") {
                    exit(e);
                }
            },
        ));
    }
    for (kind, online) in [("offline", false), ("online", true)] {
        let weak = Rc::downgrade(shared);
        listeners.push(Listener::new(window, kind, &shared.guard, move |_| {
            if let Some(s) = weak.upgrade() {
                s.callback(Command::Online(online));
            }
        }));
    }
}

/// The connection is back (`true`: what waited for it goes now) or lost.
pub fn online(shared: &Rc<Shared>, st: &mut State, online: bool) {
    st.offline = !online;
    if online {
        st.outbox.resume();
        shared.log(&[words::ONLINE]);
        sender::send_soon(shared, st);
    } else {
        shared.log(&[words::OFFLINE]);
    }
}
