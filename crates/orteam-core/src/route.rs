//! The gateway API route a request came in on. Recorded with every usage event so reports,
//! dashboards and tools can tell chat completions from Messages, Responses, embeddings and
//! legacy completions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An API route of the gateway. Serialized (and stored) as its lowercase name.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ApiRoute {
    /// OpenAI chat completions (`/v1/chat/completions`). Events recorded before routes were
    /// recorded are chat.
    #[default]
    Chat,
    /// Anthropic Messages (`/v1/messages`).
    Messages,
    /// OpenAI Responses (`/v1/responses`).
    Responses,
    /// Embeddings (`/v1/embeddings`).
    Embeddings,
    /// Legacy text completions (`/v1/completions`).
    Completions,
}

impl ApiRoute {
    pub const ALL: [ApiRoute; 5] = [
        ApiRoute::Chat,
        ApiRoute::Messages,
        ApiRoute::Responses,
        ApiRoute::Embeddings,
        ApiRoute::Completions,
    ];

    /// The lowercase name: what is stored, serialized and accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRoute::Chat => "chat",
            ApiRoute::Messages => "messages",
            ApiRoute::Responses => "responses",
            ApiRoute::Embeddings => "embeddings",
            ApiRoute::Completions => "completions",
        }
    }
}

impl fmt::Display for ApiRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`ApiRoute::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown API route {0:?}: expected chat, messages, responses, embeddings or completions")]
pub struct UnknownApiRoute(pub String);

impl FromStr for ApiRoute {
    type Err = UnknownApiRoute;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiRoute::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownApiRoute(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_display_and_serde() {
        let names = ["chat", "messages", "responses", "embeddings", "completions"];
        assert_eq!(ApiRoute::ALL.map(ApiRoute::as_str), names);
        for r in ApiRoute::ALL {
            assert_eq!(r.as_str().parse::<ApiRoute>(), Ok(r));
            assert_eq!(r.to_string(), r.as_str());
            let json = serde_json::to_string(&r).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<ApiRoute>(&json).ok(), Some(r));
        }
    }

    #[test]
    fn default_is_chat() {
        assert_eq!(ApiRoute::default(), ApiRoute::Chat);
    }

    #[test]
    fn unknown_names_are_refused_with_the_valid_ones_listed() {
        for bad in ["", "Chat", "chat/completions", "embedding"] {
            let err = bad.parse::<ApiRoute>().err().map(|e| e.to_string());
            let err = err.unwrap_or_default();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            for r in ApiRoute::ALL {
                assert!(err.contains(r.as_str()), "{err} lacks {r}");
            }
        }
        assert!(serde_json::from_str::<ApiRoute>("\"Chat\"").is_err());
    }
}
