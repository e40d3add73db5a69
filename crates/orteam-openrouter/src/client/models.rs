//! Models: `/models`, `/models/user`, `/embeddings/models`, endpoints and ZDR endpoints.

use super::{Call, encode_segment};
use crate::Client;
use crate::error::{ClientError, ErrorKind};
use crate::types::models::{Endpoint, Model, ModelCount, ModelEndpoints, ModelList, ModelsParams};
impl Client {
    /// `GET /models` with filters. Never cached.
    pub async fn models(&self, params: &ModelsParams) -> Result<ModelList, ClientError> {
        self.call(Call::get("/models").query(params.query())).await
    }

    /// `GET /embeddings/models`: the embedding models, in `/models`' shape. Never cached.
    /// `GET /models/count`: how many models `/models` lists (for these output modalities).
    pub async fn models_count(&self, output_modalities: &[&str]) -> Result<u64, ClientError> {
        let mut call = Call::get("/models/count");
        if !output_modalities.is_empty() {
            call = call.query(vec![("output_modalities", output_modalities.join(","))]);
        }
        let c: ModelCount = self.call_data(call).await?;
        Ok(c.count)
    }

    /// `GET /model/{author}/{slug}`: one model.
    pub async fn model(&self, author: &str, slug: &str) -> Result<Model, ClientError> {
        self.call_data(Call::get(format!(
            "/model/{}/{}",
            encode_segment(author),
            encode_segment(slug)
        )))
        .await
    }

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
