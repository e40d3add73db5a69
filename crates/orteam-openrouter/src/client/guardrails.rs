//! Guardrails: CRUD and key and member assignments.

use reqwest::Method;
use serde::Serialize;

use super::{Call, encode_segment};
use crate::Client;
use crate::error::ClientError;
use crate::retry::Idempotency;
use crate::types::guardrails::{
    AssignedCount, CreateGuardrailRequest, Guardrail, KeyAssignment, KeyHashes,
    ListGuardrailsParams, MemberAssignment, MemberUserIds, UnassignedCount, UpdateGuardrailRequest,
};
use crate::types::{Deleted, Page, Pagination};
impl Client {
    /// `GET /guardrails`. Never cached.
    pub async fn list_guardrails(
        &self,
        params: &ListGuardrailsParams,
    ) -> Result<Page<Guardrail>, ClientError> {
        self.call(Call::get("/guardrails").query(params.query()))
            .await
    }

    /// `POST /guardrails`. Retried on 429 only, like [`create_key`](Self::create_key).
    pub async fn create_guardrail(
        &self,
        req: &CreateGuardrailRequest,
    ) -> Result<Guardrail, ClientError> {
        self.call_data(Call::new(Method::POST, "/guardrails", Idempotency::Create).json(req)?)
            .await
    }

    /// `GET /guardrails/{id}`.
    pub async fn get_guardrail(&self, id: &str) -> Result<Guardrail, ClientError> {
        self.call_data(Call::get(format!("/guardrails/{}", encode_segment(id))))
            .await
    }

    /// `PATCH /guardrails/{id}`.
    pub async fn update_guardrail(
        &self,
        id: &str,
        req: &UpdateGuardrailRequest,
    ) -> Result<Guardrail, ClientError> {
        let call = Call::new(
            Method::PATCH,
            format!("/guardrails/{}", encode_segment(id)),
            Idempotency::Idempotent,
        )
        .json(req)?;
        self.call_data(call).await
    }

    /// `DELETE /guardrails/{id}`.
    pub async fn delete_guardrail(&self, id: &str) -> Result<Deleted, ClientError> {
        self.call(Call::new(
            Method::DELETE,
            format!("/guardrails/{}", encode_segment(id)),
            Idempotency::Idempotent,
        ))
        .await
    }

    fn assignment_call<B: Serialize>(
        &self,
        id: &str,
        tail: &str,
        body: &B,
    ) -> Result<Call, ClientError> {
        Call::new(
            Method::POST,
            format!("/guardrails/{}/assignments/{tail}", encode_segment(id)),
            Idempotency::Idempotent,
        )
        .json(body)
    }

    /// `POST /guardrails/{id}/assignments/keys` `{key_hashes}`.
    pub async fn assign_keys(
        &self,
        id: &str,
        key_hashes: &[String],
    ) -> Result<AssignedCount, ClientError> {
        let body = KeyHashes {
            key_hashes: key_hashes.to_vec(),
        };
        self.call(self.assignment_call(id, "keys", &body)?).await
    }

    /// `POST /guardrails/{id}/assignments/keys/remove` `{key_hashes}`.
    pub async fn unassign_keys(
        &self,
        id: &str,
        key_hashes: &[String],
    ) -> Result<UnassignedCount, ClientError> {
        let body = KeyHashes {
            key_hashes: key_hashes.to_vec(),
        };
        self.call(self.assignment_call(id, "keys/remove", &body)?)
            .await
    }

    /// `POST /guardrails/{id}/assignments/members` `{member_user_ids}`.
    pub async fn assign_members(
        &self,
        id: &str,
        user_ids: &[String],
    ) -> Result<AssignedCount, ClientError> {
        let body = MemberUserIds {
            member_user_ids: user_ids.to_vec(),
        };
        self.call(self.assignment_call(id, "members", &body)?).await
    }

    /// `POST /guardrails/{id}/assignments/members/remove` `{member_user_ids}`.
    pub async fn unassign_members(
        &self,
        id: &str,
        user_ids: &[String],
    ) -> Result<UnassignedCount, ClientError> {
        let body = MemberUserIds {
            member_user_ids: user_ids.to_vec(),
        };
        self.call(self.assignment_call(id, "members/remove", &body)?)
            .await
    }

    /// `GET /guardrails/assignments/keys`: every key assignment.
    pub async fn key_assignments(
        &self,
        page: &Pagination,
    ) -> Result<Page<KeyAssignment>, ClientError> {
        self.call(Call::get("/guardrails/assignments/keys").query(page.query()))
            .await
    }

    /// `GET /guardrails/assignments/members`: every member assignment.
    pub async fn member_assignments(
        &self,
        page: &Pagination,
    ) -> Result<Page<MemberAssignment>, ClientError> {
        self.call(Call::get("/guardrails/assignments/members").query(page.query()))
            .await
    }

    /// `GET /guardrails/{id}/assignments/keys`.
    pub async fn guardrail_key_assignments(
        &self,
        id: &str,
        page: &Pagination,
    ) -> Result<Page<KeyAssignment>, ClientError> {
        self.call(
            Call::get(format!(
                "/guardrails/{}/assignments/keys",
                encode_segment(id)
            ))
            .query(page.query()),
        )
        .await
    }

    /// `GET /guardrails/{id}/assignments/members`.
    pub async fn guardrail_member_assignments(
        &self,
        id: &str,
        page: &Pagination,
    ) -> Result<Page<MemberAssignment>, ClientError> {
        self.call(
            Call::get(format!(
                "/guardrails/{}/assignments/members",
                encode_segment(id)
            ))
            .query(page.query()),
        )
        .await
    }
}
