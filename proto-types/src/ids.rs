//! Typed identifiers. Each is a checked string: 1 to 128 bytes of UTF-8 with no control
//! characters and no leading or trailing whitespace. They are parsed at the edge (`parse`,
//! `TryFrom<String>`), so nothing below it handles a raw `String` where an id is meant, and a
//! postcard payload that carries an invalid id fails to decode.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what} contains a control character")]
    ControlCharacter { what: &'static str },
    #[error("{what} has leading or trailing whitespace")]
    Whitespace { what: &'static str },
}

/// The longest identifier accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

fn check(what: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { what });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            what,
            len: s.len(),
            max: MAX_ID_LEN,
        });
    }
    if s.chars().any(char::is_control) {
        return Err(IdError::ControlCharacter { what });
    }
    if s.trim() != s {
        return Err(IdError::Whitespace { what });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `s` and wraps it.
            ///
            /// # Errors
            /// [`IdError`] naming what is wrong with `s`.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check($what, &s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

string_id!(
    /// An employee (a user of the CRM), as the CRM and the HR system name them.
    EmployeeId,
    "employee id"
);
string_id!(
    /// A customer record in the CRM.
    CustomerId,
    "customer id"
);
string_id!(
    /// A deal (opportunity) in the CRM.
    DealId,
    "deal id"
);
string_id!(
    /// A named role, e.g. `sales-rep`.
    RoleName,
    "role name"
);
string_id!(
    /// A report in the CRM.
    ReportId,
    "report id"
);
string_id!(
    /// The client's own id for an event; the ledger appends each id at most once.
    EventId,
    "event id"
);
string_id!(
    /// A non-human principal: the HR system, an identity provider, Handover itself.
    SystemId,
    "system id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_empty_long_control_and_padded_strings() {
        assert_eq!(
            EmployeeId::parse(""),
            Err(IdError::Empty {
                what: "employee id"
            })
        );
        assert!(matches!(
            CustomerId::parse("x".repeat(129)),
            Err(IdError::TooLong { len: 129, .. })
        ));
        assert!(matches!(
            DealId::parse("a\nb"),
            Err(IdError::ControlCharacter { .. })
        ));
        assert!(matches!(
            RoleName::parse(" admin"),
            Err(IdError::Whitespace { .. })
        ));
        assert_eq!(EmployeeId::parse("张伟-7").unwrap().as_str(), "张伟-7");
    }
}
