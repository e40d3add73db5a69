//! The refusal record: every request the gateway refuses (401, 400, 403, 402, 429, 413…) is
//! counted in the ledger per member × route × model × reason × minute
//! ([`orteam_ledger::Ledger::record_refusal`], a memory increment), so reports, the dashboard,
//! `top` and MCP can say who was blocked, how often and by what.

use orteam_ledger::Refusal;

use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::wire::Wire;

/// What the pipeline had learnt about a request when it stopped: filled as it goes, read only
/// when the request is refused.
#[derive(Debug, Default)]
pub struct Seen {
    pub member_id: Option<String>,
    pub model: Option<String>,
}

/// Counts `err` as a refusal if it is one (a 4xx the gateway decided; upstream errors and the
/// gateway's own failures are not refusals).
pub fn record(gw: &Gateway, wire: Wire, seen: Seen, err: &GatewayError) {
    if !err.status().is_client_error() || matches!(err, GatewayError::Upstream { .. }) {
        return;
    }
    let detail = match err {
        GatewayError::BudgetExhausted { scope, window, .. } => Some(format!("{scope} {window}")),
        GatewayError::RateLimited { what, .. } => Some((*what).to_owned()),
        GatewayError::ModelNotAllowed { tier, .. } => Some(format!("tier {tier}")),
        GatewayError::FieldNotAllowed { field, .. } => Some(format!("field {field}")),
        GatewayError::BadRequest {
            param: Some(param), ..
        } => Some(format!("param {param}")),
        _ => None,
    };
    gw.ledger.record_refusal(Refusal {
        member_id: seen.member_id,
        route: wire.route(),
        model: seen.model,
        reason: err.code().to_owned(),
        detail,
    });
}
