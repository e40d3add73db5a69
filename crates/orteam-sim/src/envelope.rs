//! OpenRouter's JSON response envelope, `{"data": …}`, written once for every handler.

use serde::Serialize;

/// `{"data": …}`; lists that page also carry `total_count` after it.
#[derive(Debug, Serialize)]
pub(crate) struct Envelope<T> {
    pub data: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_count: Option<usize>,
}

impl<T> Envelope<T> {
    /// `{"data": data}`.
    pub fn data(data: T) -> Self {
        Envelope {
            data,
            total_count: None,
        }
    }

    /// `{"data": data, "total_count": total_count}`.
    pub fn page(data: T, total_count: usize) -> Self {
        Envelope {
            data,
            total_count: Some(total_count),
        }
    }
}
