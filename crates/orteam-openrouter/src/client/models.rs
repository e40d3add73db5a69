//! Models: `/models`, `/models/user`, `/embeddings/models`, endpoints and ZDR endpoints.

use super::{Call, encode_segment};
use crate::Client;
use crate::error::{ClientError, ErrorKind};
use crate::types::models::{Endpoint, ModelEndpoints, ModelList, ModelsParams};
impl Client {
    /// `GET /models` with filters. Never cached.
    pub async fn models(&self, params: &ModelsParams) -> Result<ModelList, ClientError> {
        self.call(Call::get("/models").query(params.query())).await
    }

    /// `GET /embeddings/models`: the embedding models, in `/models`' shape. Never cached.
    pub async fn embedding_models(&self) -> Result<ModelList, ClientError> {
        self.call(Call::get("/embeddings/models")).await
    }

    /// `GET /models/{author}/{slug}/endpoints`.
    pub async fn model_endpoints(
        &self,
        author: &str,
        slug: &str,
    ) -> Result<ModelEndpoints, ClientError> {
        self.call_data(Call::get(format!(
            "/models/{}/{}/endpoints",
            encode_segment(author),
            encode_segment(slug)
        )))
        .await
    }

    /// [`model_endpoints`](Self::model_endpoints) for an id such as `openai/gpt-4o`.
    pub async fn model_endpoints_by_id(
        &self,
        model_id: &str,
    ) -> Result<ModelEndpoints, ClientError> {
        let (author, slug) = model_id.split_once('/').ok_or_else(|| {
            ErrorKind::InvalidRequest(format!("model id {model_id:?} is not author/slug"))
        })?;
        self.model_endpoints(author, slug).await
    }

    /// `GET /models/user`: models allowed by the account's settings (needs a key).
    pub async fn user_models(&self) -> Result<ModelList, ClientError> {
        self.call(Call::get("/models/user")).await
    }

    /// `GET /endpoints/zdr`: a flat list of zero-data-retention endpoints.
    pub async fn zdr_endpoints(&self) -> Result<Vec<Endpoint>, ClientError> {
        self.call_data(Call::get("/endpoints/zdr")).await
    }
}
