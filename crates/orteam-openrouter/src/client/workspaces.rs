//! Workspaces: CRUD and members.

use reqwest::Method;

use super::{Call, encode_segment};
use crate::Client;
use crate::error::ClientError;
use crate::retry::Idempotency;
use crate::types::workspaces::{
    CreateWorkspaceRequest, MembersAdded, MembersRemoved, UpdateWorkspaceRequest, UserIds,
    Workspace, WorkspaceMember,
};
use crate::types::{Deleted, Page, Pagination};

impl Client {
    /// `GET /workspaces`.
    pub async fn list_workspaces(&self, page: &Pagination) -> Result<Page<Workspace>, ClientError> {
        self.call(Call::get("/workspaces").query(page.query()))
            .await
    }

    /// `POST /workspaces`. Retried on 429 only, like [`create_key`](Self::create_key).
    pub async fn create_workspace(
        &self,
        req: &CreateWorkspaceRequest,
    ) -> Result<Workspace, ClientError> {
        self.call_data(Call::new(Method::POST, "/workspaces", Idempotency::Create).json(req)?)
            .await
    }

    /// `GET /workspaces/{id}` (id or slug).
    pub async fn get_workspace(&self, id: &str) -> Result<Workspace, ClientError> {
        self.call_data(Call::get(format!("/workspaces/{}", encode_segment(id))))
            .await
    }

    /// `PATCH /workspaces/{id}`.
    pub async fn update_workspace(
        &self,
        id: &str,
        req: &UpdateWorkspaceRequest,
    ) -> Result<Workspace, ClientError> {
        let call = Call::new(
            Method::PATCH,
            format!("/workspaces/{}", encode_segment(id)),
            Idempotency::Idempotent,
        )
        .json(req)?;
        self.call_data(call).await
    }

    /// `DELETE /workspaces/{id}`.
    pub async fn delete_workspace(&self, id: &str) -> Result<Deleted, ClientError> {
        self.call(Call::new(
            Method::DELETE,
            format!("/workspaces/{}", encode_segment(id)),
            Idempotency::Idempotent,
        ))
        .await
    }

    /// `GET /workspaces/{id}/members`.
    pub async fn workspace_members(
        &self,
        id: &str,
        page: &Pagination,
    ) -> Result<Page<WorkspaceMember>, ClientError> {
        self.call(
            Call::get(format!("/workspaces/{}/members", encode_segment(id))).query(page.query()),
        )
        .await
    }

    /// `POST /workspaces/{id}/members/add` `{user_ids}` (organization members only).
    pub async fn add_workspace_members(
        &self,
        id: &str,
        user_ids: &[String],
    ) -> Result<MembersAdded, ClientError> {
        let call = Call::new(
            Method::POST,
            format!("/workspaces/{}/members/add", encode_segment(id)),
            Idempotency::Idempotent,
        )
        .json(&UserIds { user_ids })?;
        self.call(call).await
    }

    /// `POST /workspaces/{id}/members/remove` `{user_ids}`.
    pub async fn remove_workspace_members(
        &self,
        id: &str,
        user_ids: &[String],
    ) -> Result<MembersRemoved, ClientError> {
        let call = Call::new(
            Method::POST,
            format!("/workspaces/{}/members/remove", encode_segment(id)),
            Idempotency::Idempotent,
        )
        .json(&UserIds { user_ids })?;
        self.call(call).await
    }
}
