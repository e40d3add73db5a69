//! Chat completions, buffered and streamed.

use reqwest::Method;

use super::{Attempt, Call, GENERATION_ID_HEADER, header_string};
use crate::Client;
use crate::error::{ClientError, ErrorKind};
use crate::retry::Idempotency;
use crate::stream::ChatStream;
use crate::types::chat::{ChatCompletion, ChatRequest, ChatResponse};
impl Client {
    /// `POST /chat/completions` without streaming (`stream` is forced to `false`).
    ///
    /// Retried on 429 and 5xx (and connect failures); never once a success body is being read.
    pub async fn chat(&self, req: &ChatRequest) -> Result<ChatCompletion, ClientError> {
        let mut req = req.clone();
        req.stream = Some(false);
        let call =
            Call::new(Method::POST, "/chat/completions", Idempotency::Completion).json(&req)?;
        let endpoint = call.endpoint();
        let ex = self.exchange(call).await?;
        let response: ChatResponse = self.decode(&endpoint, &ex)?;
        Ok(ChatCompletion {
            response,
            generation_id: header_string(&ex.headers, GENERATION_ID_HEADER),
            retries: ex.retries,
            raw: ex.body,
        })
    }

    /// `POST /chat/completions` with `stream: true`.
    ///
    /// Errors before the stream starts (a non-2xx status, or a 2xx that is not
    /// `text/event-stream`) are returned here, after retries on 429/5xx. Once the stream has
    /// begun nothing is retried; see [`ChatStream`] for how it ends.
    pub async fn chat_stream(&self, req: &ChatRequest) -> Result<ChatStream, ClientError> {
        let mut req = req.clone();
        req.stream = Some(true);
        let call =
            Call::new(Method::POST, "/chat/completions", Idempotency::Completion).json(&req)?;
        match self.execute(&call, true).await? {
            Attempt::Stream {
                response,
                retries,
                started,
            } => {
                let generation_id = header_string(response.headers(), GENERATION_ID_HEADER);
                Ok(ChatStream::from_response(
                    response,
                    call.endpoint(),
                    self.inner.api_key.clone(),
                    generation_id,
                    retries,
                    started,
                ))
            }
            Attempt::Buffered(_) => {
                Err(ErrorKind::InvalidRequest("unexpected buffered response".into()).into())
            }
        }
    }
}
