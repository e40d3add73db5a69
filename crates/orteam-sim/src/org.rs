//! The organization: a seeded set of members and `GET /organization/members`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Management;
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::extract::{ApiQuery, page_params};
use crate::shared::Shared;

pub(crate) const ORGANIZATION_ID: &str = "org_2vK8sQ3mTeamOrteamSim01";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Member {
    pub id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// Four members: one admin, three members (ids look like Clerk's `user_…`).
pub(crate) fn seed_members(now: DateTime<Utc>) -> Vec<Member> {
    let m = |id: &str, email: &str, first: &str, last: &str, role: &str, days: i64| Member {
        id: id.to_owned(),
        email: email.to_owned(),
        first_name: Some(first.to_owned()),
        last_name: Some(last.to_owned()),
        role: role.to_owned(),
        created_at: now - TimeDelta::days(days),
    };
    vec![
        m(
            "user_2vK8sQ3mAdaLovelace0001",
            "ada@example.com",
            "Ada",
            "Lovelace",
            "org:admin",
            120,
        ),
        m(
            "user_2vK8sQ3mGraceHopper0002",
            "grace@example.com",
            "Grace",
            "Hopper",
            "org:member",
            90,
        ),
        m(
            "user_2vK8sQ3mAlanTuring00003",
            "alan@example.com",
            "Alan",
            "Turing",
            "org:member",
            60,
        ),
        m(
            "user_2vK8sQ3mKatherineJ00004",
            "katherine@example.com",
            "Katherine",
            "Johnson",
            "org:member",
            30,
        ),
    ]
}

#[derive(Serialize)]
struct MemberView<'a> {
    id: &'a str,
    email: &'a str,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    role: &'a str,
}

#[derive(Deserialize)]
pub(crate) struct MembersQuery {
    offset: Option<String>,
    limit: Option<String>,
}

/// `GET /organization/members` (management key): offset, limit 1–100 (default 50).
pub(crate) async fn list_members(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiQuery(q): ApiQuery<MembersQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = page_params(q.offset.as_deref(), q.limit.as_deref())?;
    let st = shared.state.lock();
    let data: Vec<MemberView<'_>> = st
        .members
        .iter()
        .skip(offset)
        .take(limit)
        .map(|m| MemberView {
            id: &m.id,
            email: &m.email,
            first_name: m.first_name.as_deref(),
            last_name: m.last_name.as_deref(),
            role: &m.role,
        })
        .collect();
    Ok(Json(Envelope::page(data, st.members.len())).into_response())
}
