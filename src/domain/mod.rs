//! Records and rules of the ISMS: value types that can only hold valid data, state machines
//! and the checks the standard asks for. No I/O happens here.

/// Defines a string-valued enum: serde and JSON Schema as snake_case text, `as_str`, and
/// `FromStr` for values read back from storage (an unknown value there is an internal error).
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in the order declared.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as written in arguments, outputs and storage.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = crate::error::Error;
            fn from_str(s: &str) -> crate::error::Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(crate::error::Error::Internal(format!("stored {} `{s}` is unknown", stringify!($name)))),
                }
            }
        }
    };
}

pub mod access;
pub mod actor;
pub mod audit;
pub mod awareness;
pub mod change;
pub mod competence;
pub mod corrective_action;
pub mod internal_audit;
pub mod management_review;
pub mod nonconformity;
pub mod objective;
pub mod references;
pub mod risk;
pub mod similarity;
pub mod soa;
pub mod text;
pub mod time;

/// Optimistic concurrency: an update names the version it read; any other version means the
/// record changed in between, and the caller must re-read before deciding again.
pub fn check_version(reference: &str, expected: i64, current: i64) -> crate::error::Result<()> {
    if expected == current {
        Ok(())
    } else {
        Err(crate::error::Error::Conflict { reference: reference.to_owned(), expected, current })
    }
}
