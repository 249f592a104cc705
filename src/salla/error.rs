//! Why an event is not sent: [`ParseError`], the [`Problem`] it names, and the merchant's message.
//!
//! Only what an event cannot be sent without is an error (`docs/mapping.md` §2, "Reading
//! payloads"); an unusable optional field is a [`Warning`](super::Warning), not an error.

use crate::words;
use std::fmt;

/// Why an event could not be parsed into something worth sending.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// The event's name as received.
    pub event: String,
    /// What was wrong.
    pub problem: Problem,
}

/// What was wrong with a payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The event had no name.
    NoName,
    /// The payload was not an object.
    NotAnObject {
        /// What it was.
        got: &'static str,
    },
    /// A field the event cannot be sent without was missing or empty.
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field the event cannot be sent without had an unusable value.
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it was.
        got: String,
    },
}

impl ParseError {
    /// The message for the merchant.
    pub fn message(&self) -> String {
        let event = if self.event.is_empty() {
            words::AN_EVENT
        } else {
            &self.event
        };
        match &self.problem {
            Problem::NoName => words::NO_NAME.to_owned(),
            Problem::NotAnObject { got } => {
                words::cat(&[event, words::NOT_SENT, words::NOT_AN_OBJECT, got])
            }
            Problem::MissingField { field } => {
                words::cat(&[event, words::NOT_SENT, "`", field, "` ", words::MISSING])
            }
            Problem::WrongType {
                field,
                expected,
                got,
            } => words::cat(&[
                event,
                words::NOT_SENT,
                "`",
                field,
                words::MUST_BE,
                expected,
                words::GOT,
                got,
            ]),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ParseError {}
