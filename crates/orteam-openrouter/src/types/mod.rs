//! Wire types for every endpoint, grouped by API area.
//!
//! Conventions shared by all of them:
//! - Money is [`Money`](orteam_core::Money), never a float: JSON-number amounts (`usage.cost`,
//!   `limit`, `total_credits`, …) go through `orteam_core::money::json_number`, which reads the
//!   number's source text losslessly; prices (decimal strings) use `Money`'s own `Deserialize`.
//! - Every main object keeps the fields this crate does not model in `extra`, verbatim, so a raw
//!   view can be shown later. Optional and newer fields default when missing.
//! - Objects with an `extra` map deserialize only through `serde_json`. Parse JSON text
//!   (`from_str`, `from_slice`, `from_reader`) to keep money lossless: a `serde_json::Value` has
//!   already turned numbers into `f64` (exact only up to 15 significant digits).

pub mod activity;
pub mod chat;
pub mod credits;
pub mod generation;
pub mod guardrails;
pub mod keys;
pub mod models;
pub mod org;
pub mod workspaces;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Unknown fields of an object, kept verbatim.
pub type Extra = Map<String, Value>;

/// Declares a wire object that keeps unknown fields in `pub extra` and still reads JSON-number
/// money losslessly.
///
/// `#[serde(flatten)]` cannot be used for deserialization here: serde buffers flattened objects
/// as generic content, which turns numbers into `f64` and breaks `RawValue`. Instead the macro
/// reads the object's raw text once, parses the known fields from it with a private twin struct
/// (no flatten), and collects the remaining keys into `extra`. Serialization uses a normal
/// flatten, which is lossless.
///
/// Field names must equal their JSON names (no `rename`).
macro_rules! wire_object {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
            /// Fields this crate does not model, kept verbatim.
            #[serde(flatten)]
            pub extra: $crate::types::Extra,
        }

        const _: () = {
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            struct Wire {
                $(
                    $(#[$fmeta])*
                    $field: $ty,
                )*
            }

            impl<'de> serde::Deserialize<'de> for $name {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let raw = <Box<serde_json::value::RawValue> as serde::Deserialize>::deserialize(d)?;
                    let wire: Wire = serde_json::from_str(raw.get())
                        .map_err(<D::Error as serde::de::Error>::custom)?;
                    let extra = $crate::types::unknown_fields(raw.get(), &[$(stringify!($field)),*])
                        .map_err(<D::Error as serde::de::Error>::custom)?;
                    Ok($name {
                        $($field: wire.$field,)*
                        extra,
                    })
                }
            }
        };
    };
}
pub(crate) use wire_object;

/// The keys of the JSON object `raw` that are not in `known`, with their values.
pub(crate) fn unknown_fields(raw: &str, known: &[&str]) -> Result<Extra, serde_json::Error> {
    let mut all: Extra = serde_json::from_str(raw)?;
    all.retain(|k, _| !known.contains(&k.as_str()));
    Ok(all)
}

/// `{"data": …}`, the envelope of most successful responses.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Envelope<T> {
    pub data: T,
}

/// A list with the `total_count` some endpoints add (guardrails, assignments, members).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// The number of items across all pages, when the endpoint reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
}

/// `{"deleted": true}` from the DELETE endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Deleted {
    pub deleted: bool,
}

/// `offset` / `limit` pagination (guardrails, assignments, organization members).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pagination {
    /// Items to skip (default 0).
    pub offset: Option<u32>,
    /// Page size, 1–100 (the API default is 50).
    pub limit: Option<u32>,
}

impl Pagination {
    pub fn new(offset: u32, limit: u32) -> Self {
        Pagination {
            offset: Some(offset),
            limit: Some(limit),
        }
    }

    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(o) = self.offset {
            q.push(("offset", o.to_string()));
        }
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        q
    }
}

/// A three-state field for PATCH bodies: leave unchanged (omitted), clear (`null`), or set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Patch<T> {
    /// Omit the field: the server keeps its value.
    #[default]
    Keep,
    /// Send `null`: the server clears the value.
    Clear,
    /// Send the value.
    Set(T),
}

impl<T> Patch<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }

    /// `Set(v)` for `Some(v)`, `Clear` for `None`.
    pub fn from_option(v: Option<T>) -> Self {
        match v {
            Some(v) => Patch::Set(v),
            None => Patch::Clear,
        }
    }
}

impl<T> From<T> for Patch<T> {
    fn from(v: T) -> Self {
        Patch::Set(v)
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Set(v) => v.serialize(s),
            Patch::Keep | Patch::Clear => s.serialize_none(),
        }
    }
}

/// Serde helpers for money fields.
pub(crate) mod money_serde {
    use orteam_core::Money;
    use orteam_core::money::json_number;
    use serde::Serializer;

    use super::Patch;

    /// A `Patch<Money>` written as a JSON number (or `null`).
    pub fn patch_number<S: Serializer>(p: &Patch<Money>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Patch::Set(m) => json_number::serialize(m, s),
            Patch::Keep | Patch::Clear => s.serialize_none(),
        }
    }
}

/// Lenient UTC timestamps: RFC 3339 (any offset, converted to UTC) or a naive
/// `YYYY-MM-DD HH:MM:SS[.f]` / `YYYY-MM-DDTHH:MM:SS[.f]` read as UTC.
pub(crate) mod timestamp {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn parse(s: &str) -> Option<DateTime<Utc>> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(t.with_timezone(&Utc));
        }
        for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
                return Some(t.and_utc());
            }
        }
        None
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            let s: Option<String> = Option::deserialize(d)?;
            match s {
                None => Ok(None),
                Some(s) if s.is_empty() => Ok(None),
                Some(s) => parse(&s)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {s:?}"))),
            }
        }
    }

    pub mod required {
        use super::*;

        pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
            let s = String::deserialize(d)?;
            parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {s:?}")))
        }
    }
}

#[cfg(test)]
mod tests;
