//! The unauthenticated simulator admin API under `/__sim` (faults, clock, stats, credits,
//! members). See the crate docs for the shapes.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use orteam_core::{Clock, Money};
use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::faults::FaultRule;
use crate::keys::credits_view;
use crate::org::Member;
use crate::shared::Shared;

#[derive(Serialize, Deserialize)]
struct Rules {
    rules: Vec<FaultRule>,
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    Json(Rules {
        rules: shared.faults.list(),
    })
    .into_response()
}

async fn set_faults(State(shared): State<Arc<Shared>>, ApiJson(body): ApiJson<Rules>) -> Response {
    shared.faults.set(body.rules);
    get_faults(State(shared)).await
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.faults.set(Vec::new());
    get_faults(State(shared)).await
}

#[derive(Serialize)]
struct ClockView {
    now: String,
    offset_seconds: i64,
    frozen: bool,
}

fn clock_view(shared: &Shared) -> ClockView {
    ClockView {
        now: shared
            .clock
            .now()
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        offset_seconds: shared.clock.offset().num_seconds(),
        frozen: shared.clock.frozen().is_some(),
    }
}

async fn get_clock(State(shared): State<Arc<Shared>>) -> Response {
    Json(clock_view(&shared)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    offset_seconds: Option<i64>,
    advance_seconds: Option<i64>,
    freeze_at: Option<DateTime<Utc>>,
    unfreeze: Option<bool>,
}

async fn set_clock(
    State(shared): State<Arc<Shared>>,
    ApiJson(body): ApiJson<ClockBody>,
) -> Result<Response, ApiError> {
    let given = [
        body.offset_seconds.is_some(),
        body.advance_seconds.is_some(),
        body.freeze_at.is_some(),
        body.unfreeze.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        return Err(ApiError::bad_request(
            "give exactly one of offset_seconds, advance_seconds, freeze_at, unfreeze",
        ));
    }
    let secs = |s: i64| {
        TimeDelta::try_seconds(s).ok_or_else(|| ApiError::bad_request("seconds out of range"))
    };
    if let Some(s) = body.offset_seconds {
        shared.clock.set_offset(secs(s)?);
    } else if let Some(s) = body.advance_seconds {
        shared.clock.advance(secs(s)?);
    } else if let Some(at) = body.freeze_at {
        shared.clock.freeze(at);
    } else if body.unfreeze == Some(true) {
        shared.clock.unfreeze();
    }
    Ok(Json(clock_view(&shared)).into_response())
}

#[derive(Serialize)]
struct StatsView {
    requests: std::collections::BTreeMap<String, u64>,
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(StatsView {
        requests: shared.stats.snapshot(),
    })
    .into_response()
}

#[derive(Deserialize)]
struct CreditsBody {
    add: Money,
}

async fn add_credits(
    State(shared): State<Arc<Shared>>,
    ApiJson(body): ApiJson<CreditsBody>,
) -> Result<Response, ApiError> {
    if body.add.is_negative() {
        return Err(ApiError::bad_request("add must be zero or more"));
    }
    shared.state.lock().add_credits(body.add);
    shared.mark_dirty();
    Ok(Json(Envelope::data(credits_view(&shared))).into_response())
}

#[derive(Deserialize)]
struct MemberBody {
    id: Option<String>,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    role: Option<String>,
}

async fn add_member(
    State(shared): State<Arc<Shared>>,
    ApiJson(body): ApiJson<MemberBody>,
) -> Result<Response, ApiError> {
    let role = body.role.unwrap_or_else(|| "org:member".to_owned());
    if role != "org:member" && role != "org:admin" {
        return Err(ApiError::bad_request(
            "role must be org:member or org:admin",
        ));
    }
    let id = body
        .id
        .unwrap_or_else(|| format!("user_{}", uuid::Uuid::new_v4().simple()));
    let now = shared.clock.now();
    let mut st = shared.state.lock();
    if st.members.iter().any(|m| m.id == id) {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!("member {id} already exists"),
        ));
    }
    let member = Member {
        id,
        email: body.email,
        first_name: body.first_name,
        last_name: body.last_name,
        role,
        created_at: now,
    };
    let resp = Json(Envelope::data(&member)).into_response();
    st.members.push(member);
    drop(st);
    shared.mark_dirty();
    Ok(resp)
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route("/clock", get(get_clock).post(set_clock))
        .route("/stats", get(stats))
        .route("/credits", post(add_credits))
        .route("/members", post(add_member))
}
