//! Keys: `/keys`, `/keys/{hash}` and `/key`.

use reqwest::Method;

use super::{Call, encode_segment};
use crate::Client;
use crate::error::ClientError;
use crate::retry::Idempotency;
use crate::types::Deleted;
use crate::types::keys::{
    CreateKeyRequest, CreatedKey, Key, KeyInfo, ListKeysParams, UpdateKeyRequest,
};
impl Client {
    /// `GET /keys`: one page (100 keys, newest first). Cached.
    pub async fn list_keys(&self, params: &ListKeysParams) -> Result<Vec<Key>, ClientError> {
        self.call_data(Call::get("/keys").query(params.query()))
            .await
    }

    /// Every key, paging `GET /keys` by `offset` until an empty page (deduplicated by hash).
    pub async fn list_all_keys(
        &self,
        include_disabled: Option<bool>,
    ) -> Result<Vec<Key>, ClientError> {
        let mut all: Vec<Key> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut offset: u32 = 0;
        // Hard stop far beyond any real account, in case a server ignores `offset`.
        for _ in 0..10_000 {
            let page = self
                .list_keys(&ListKeysParams {
                    offset: Some(offset),
                    include_disabled,
                    workspace_id: None,
                })
                .await?;
            if page.is_empty() {
                break;
            }
            let n = u32::try_from(page.len()).unwrap_or(u32::MAX);
            let mut fresh = 0;
            for k in page {
                if seen.insert(k.hash.clone()) {
                    all.push(k);
                    fresh += 1;
                }
            }
            if fresh == 0 {
                break;
            }
            offset = offset.saturating_add(n);
        }
        Ok(all)
    }

    /// `POST /keys` → the key and its secret (shown only once).
    ///
    /// Retried on 429 only (and when the connection could not be made): after a 5xx the key may
    /// exist; list the keys to reconcile.
    pub async fn create_key(&self, req: &CreateKeyRequest) -> Result<CreatedKey, ClientError> {
        self.call(Call::new(Method::POST, "/keys", Idempotency::Create).json(req)?)
            .await
    }

    /// `GET /keys/{hash}`. Cached.
    pub async fn get_key(&self, hash: &str) -> Result<Key, ClientError> {
        self.call_data(Call::get(format!("/keys/{}", encode_segment(hash))))
            .await
    }

    /// `PATCH /keys/{hash}` with only the fields set in `req`.
    pub async fn update_key(&self, hash: &str, req: &UpdateKeyRequest) -> Result<Key, ClientError> {
        let call = Call::new(
            Method::PATCH,
            format!("/keys/{}", encode_segment(hash)),
            Idempotency::Idempotent,
        )
        .json(req)?;
        self.call_data(call).await
    }

    /// `DELETE /keys/{hash}`.
    pub async fn delete_key(&self, hash: &str) -> Result<Deleted, ClientError> {
        self.call(Call::new(
            Method::DELETE,
            format!("/keys/{}", encode_segment(hash)),
            Idempotency::Idempotent,
        ))
        .await
    }

    /// `GET /key`: the calling key. Cached.
    pub async fn current_key(&self) -> Result<KeyInfo, ClientError> {
        self.call_data(Call::get("/key")).await
    }
}
