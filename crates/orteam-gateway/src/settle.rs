//! Stage: settle a request at the exact cost upstream reported, or, when the cost is unknown
//! (a cut stream, a client gone before the usage arrived, a Messages stream, which carries no
//! cost), charge the reserved worst case provisionally and correct it from `/generation`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orteam_core::Money;
use orteam_ledger::{AuthContext, Outcome, Reservation, Usage};
use orteam_openrouter::{Jitter, RetryPolicy};

use crate::auth::UpstreamCredentials;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::metrics::{self, TokenLabels, UsageLabels};
use crate::reserve::ledger_error;
use crate::wire::{CompletionInfo, Wire};

/// Everything needed to record a request once its cost is known.
#[derive(Clone)]
pub struct Settlement {
    pub gw: Arc<Gateway>,
    pub wire: Wire,
    pub request_id: String,
    pub auth: AuthContext,
    pub credentials: UpstreamCredentials,
    pub requested_model: String,
    pub served_model: String,
    pub streamed: bool,
    pub started: Instant,
    /// Upstream's `X-Generation-Id` header: known even when the client hangs up before the
    /// first byte, and the id `/generation` knows on every route (a Responses body's own id
    /// may differ).
    pub header_generation_id: Option<String>,
    /// The request's span (empty when tracing is off).
    pub trace: crate::trace::RequestTrace,
}

/// What the ledger records as in flight before forwarding (charged at the reservation's worst
/// case if the gateway dies before the settle): the same attribution as the settled event.
pub fn in_flight_usage(
    gw: &Gateway,
    wire: Wire,
    request_id: &str,
    auth: &AuthContext,
    credentials: &UpstreamCredentials,
    (requested_model, served_model): (&str, &str),
    streamed: bool,
) -> Usage {
    let mut usage = Usage::new(request_id, requested_model, Money::ZERO).with_route(wire.route());
    usage.virtual_key_id = Some(auth.key_id.clone());
    usage.upstream_key_hash = credentials.upstream_key_hash.clone();
    usage.served_model = Some(served_model.to_owned());
    usage.streamed = streamed;
    usage.outcome = Outcome::Provisional;
    usage.title = Some(gw.config.attribution_title.clone());
    usage
}

impl Settlement {
    /// The generation to look up: the header's, else the answer's own id.
    fn generation_id(&self, info: &CompletionInfo) -> Option<String> {
        self.header_generation_id
            .clone()
            .or_else(|| info.generation_id.clone())
    }

    /// The model upstream says it served (the one sent when it does not say).
    fn served<'a>(&'a self, info: &'a CompletionInfo) -> &'a str {
        info.model.as_deref().unwrap_or(&self.served_model)
    }

    /// Whether upstream served a model the member's tier does not allow: a policy violation
    /// (whatever its cause: a provider-side substitution, a routing field the gateway missed).
    /// The model sent (the requested one or the tier's downgrade target) and the fallbacks
    /// were checked before forwarding; a canonical slug counts as its model id.
    fn outside_tier(&self, info: &CompletionInfo) -> bool {
        let served = self.served(info);
        if served == self.served_model || crate::policy::allows(&self.auth.tier, served) {
            return false;
        }
        let table = self.gw.catalog.snapshot();
        let id = table.model_id(served);
        id != self.served_model && !crate::policy::allows(&self.auth.tier, id)
    }

    fn member_label(&self) -> String {
        metrics::member_label(self.gw.config.member_labels, &self.auth)
    }

    fn usage(&self, info: &CompletionInfo, cost: Money, outcome: Outcome) -> Usage {
        let billed = info.usage.clone().unwrap_or_default();
        let served_outside_tier = self.outside_tier(info);
        if served_outside_tier {
            tracing::warn!(
                member = %self.auth.member_id,
                tier = %self.auth.tier.id,
                requested = %self.requested_model,
                served = %self.served(info),
                request_id = %self.request_id,
                "policy violation: upstream served a model outside the member's tier"
            );
            self.gw
                .metrics
                .policy_violations
                .get_or_create(&metrics::ViolationLabels {
                    member: self.member_label(),
                    model: self.served(info).to_owned(),
                })
                .inc();
        }
        let elapsed = self.started.elapsed();
        Usage {
            request_id: self.request_id.clone(),
            virtual_key_id: Some(self.auth.key_id.clone()),
            upstream_key_hash: self.credentials.upstream_key_hash.clone(),
            requested_model: self.requested_model.clone(),
            served_model: Some(
                info.model
                    .clone()
                    .unwrap_or_else(|| self.served_model.clone()),
            ),
            provider: info.provider.clone(),
            prompt_tokens: billed.prompt_tokens,
            completion_tokens: billed.completion_tokens,
            reasoning_tokens: billed.reasoning_tokens,
            cached_tokens: billed.cached_tokens,
            cost,
            generation_id: self.generation_id(info),
            streamed: self.streamed,
            outcome,
            latency_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            latency_us: u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
            title: Some(self.gw.config.attribution_title.clone()),
            route: self.wire.route(),
            served_outside_tier,
        }
    }

    fn record_metrics(&self, info: &CompletionInfo, cost: Money) {
        let m = &self.gw.metrics;
        let model = info
            .model
            .clone()
            .unwrap_or_else(|| self.served_model.clone());
        if let Some(b) = &info.usage {
            for (kind, n) in [
                ("prompt", b.prompt_tokens),
                ("completion", b.completion_tokens),
            ] {
                m.tokens
                    .get_or_create(&TokenLabels {
                        member: self.member_label(),
                        model: model.clone(),
                        kind,
                    })
                    .inc_by(n);
            }
        }
        m.cost_nanodollars
            .get_or_create(&UsageLabels {
                member: self.member_label(),
                model,
                route: self.wire.as_str(),
            })
            .inc_by(metrics::nanodollars(cost));
    }

    /// Settles at `cost`, the cost upstream reported. The usage event is journaled (SQLite) or
    /// committed (PostgreSQL) when this returns.
    pub async fn settle_exact(
        &self,
        reservation: Reservation,
        info: &CompletionInfo,
        cost: Money,
        outcome: Outcome,
    ) -> Result<(), GatewayError> {
        let usage = self.usage(info, cost, outcome);
        let _span = self.trace.settling(self.gw.tracing.as_ref(), &usage);
        self.record_metrics(info, cost);
        reservation
            .settle_journaled(usage)
            .await
            .map_err(ledger_error)?;
        Ok(())
    }

    /// Settles exactly when `info` states a cost, else provisionally (see
    /// [`Settlement::settle_unknown`]).
    pub async fn settle(
        &self,
        reservation: Reservation,
        info: &CompletionInfo,
        outcome: Outcome,
    ) -> Result<(), GatewayError> {
        match info.cost() {
            Some(cost) => self.settle_exact(reservation, info, cost, outcome).await,
            None => self.settle_unknown(reservation, info, outcome).await,
        }
    }

    /// Upstream generated something whose cost we did not see: charge the reserved amount
    /// provisionally (with whatever token counts were seen), then look the exact cost up by
    /// generation id in the background; the event then takes `outcome` (`partial` for a cut
    /// stream, `ok` for a whole answer that carried no cost). With no generation id nothing was
    /// generated, so the hold is released.
    ///
    /// `Err` when the provisional charge could not be made durable (the request stays recorded
    /// as in flight, and is charged when it is resolved).
    pub async fn settle_unknown(
        &self,
        reservation: Reservation,
        info: &CompletionInfo,
        outcome: Outcome,
    ) -> Result<(), GatewayError> {
        let Some(generation_id) = self.generation_id(info) else {
            reservation.release();
            return Ok(());
        };
        let provisional = reservation.amount();
        let usage = self.usage(info, provisional, Outcome::Provisional);
        let _span = self.trace.settling(self.gw.tracing.as_ref(), &usage);
        if let Err(err) = reservation.settle(usage).await {
            tracing::error!(%err, request_id = %self.request_id, "provisional settle failed");
            return Err(ledger_error(err));
        }
        let this = self.clone();
        self.gw.tasks.spawn(async move {
            this.correct_from_generation(generation_id, outcome).await;
        });
        Ok(())
    }

    /// Polls `/generation` until upstream knows the exact cost (it may lag the request).
    async fn correct_from_generation(&self, generation_id: String, outcome: Outcome) {
        let client = self
            .gw
            .openrouter
            .with_api_key(self.credentials.secret.clone());
        // Upstream may record the generation seconds after the request: 200 ms doubling to
        // 30 s, 20 looks (the product's one retry policy, without jitter: one poller per id).
        let policy = RetryPolicy {
            max_retries: 20,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            jitter: Jitter::None,
            max_retry_after: Duration::from_secs(30),
        };
        for attempt in 0..policy.max_retries {
            match client.generation(&generation_id).await {
                Ok(g) => {
                    if let Some(cost) = g.total_cost {
                        match self
                            .gw
                            .ledger
                            .correct_cost(&self.request_id, cost, outcome)
                            .await
                        {
                            Ok(_) => {
                                let info = CompletionInfo {
                                    model: g.model.clone(),
                                    ..Default::default()
                                };
                                self.record_metrics(&info, cost);
                            }
                            Err(err) => {
                                tracing::warn!(%err, request_id = %self.request_id, "cost correction failed");
                            }
                        }
                        return;
                    }
                }
                Err(err) if err.is_not_found() => {}
                Err(err) => {
                    tracing::debug!(%err, %generation_id, "generation look-up failed; retrying");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(policy.delay(attempt, None)) => {}
                () = self.gw.stopping.cancelled() => break,
            }
        }
        tracing::warn!(%generation_id, request_id = %self.request_id, "exact cost still unknown; left provisional for reconciliation");
    }
}
