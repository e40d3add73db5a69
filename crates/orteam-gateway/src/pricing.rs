//! Pricing: the worst case of a request and the output cap the tightest budget can pay.
//!
//! worst case = prompt upper bound × prompt price + request price
//! \+ max_tokens × completion price × answers. The prompt bound comes from the route's adapter
//! ([`crate::wire::WireRequest::prompt_bound`]), so the reservation is never below what
//! upstream can bill. This module is pure arithmetic; [`crate::reserve`] applies it to live
//! budgets.

use orteam_core::Money;

/// The prices and limits of one model, from the upstream catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPrice {
    /// USD per prompt token.
    pub prompt: Money,
    /// USD per completion token (reasoning tokens are billed as completion tokens).
    pub completion: Money,
    /// USD per request.
    pub request: Money,
    /// USD per image in the prompt (OpenRouter's `pricing.image`), on top of its tokens.
    pub media: Money,
    /// The most completion tokens the model's provider will produce, if known.
    pub max_completion_tokens: Option<u64>,
    /// The model's context length, if known.
    pub context_length: Option<u64>,
}

impl ModelPrice {
    /// The cost of a request with these token counts (what upstream bills, for exact prices).
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Option<Money> {
        self.prompt
            .checked_mul_u64(prompt_tokens)?
            .checked_add(self.completion.checked_mul_u64(completion_tokens)?)?
            .checked_add(self.request)
    }

    /// The price of a request that generates `answers` completions (`n`): every completion
    /// token is paid that many times.
    pub fn for_answers(&self, answers: u64) -> Option<ModelPrice> {
        if answers <= 1 {
            return Some(self.clone());
        }
        Some(ModelPrice {
            completion: self.completion.checked_mul_u64(answers)?,
            ..self.clone()
        })
    }

    /// The price that bounds both this and `other`: the dearer rate of each kind, the
    /// smaller of the caps (an answer never exceeds what either model allows).
    pub fn dearest(&self, other: &ModelPrice) -> ModelPrice {
        let min_cap = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ModelPrice {
            prompt: self.prompt.max(other.prompt),
            completion: self.completion.max(other.completion),
            request: self.request.max(other.request),
            media: self.media.max(other.media),
            max_completion_tokens: min_cap(self.max_completion_tokens, other.max_completion_tokens),
            context_length: min_cap(self.context_length, other.context_length),
        }
    }

    /// The price with `parts` media parts' per-image charges folded into the request price
    /// (their tokens are in the prompt bound).
    pub fn with_media(&self, parts: u64) -> Option<ModelPrice> {
        if parts == 0 {
            return Some(self.clone());
        }
        Some(ModelPrice {
            request: self
                .request
                .checked_add(self.media.checked_mul_u64(parts)?)?,
            ..self.clone()
        })
    }

    /// The largest answer the model allows.
    pub fn completion_cap(&self, fallback: u64) -> u64 {
        self.max_completion_tokens
            .or(self.context_length)
            .unwrap_or(fallback)
            .max(1)
    }
}

/// What the gateway will send and hold for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// The `max_tokens` sent upstream.
    pub max_tokens: u64,
    /// The amount to reserve: the most this request can cost.
    pub worst_case: Money,
    /// Whether `max_tokens` differs from what the client asked for (reported in
    /// `x-orteam-max-tokens`).
    pub adjusted: bool,
}

/// Not even a minimal answer fits in the remaining budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a minimal answer costs {minimum} but only {remaining} remains")]
pub struct Unaffordable {
    pub minimum: Money,
    pub remaining: Money,
}

/// Fits a request to its budget.
///
/// - `prompt_tokens_bound`: an upper bound of the prompt's tokens.
/// - `requested`: the client's `max_tokens`, if any.
/// - `remaining`: the tightest remaining budget (None when no budget applies).
/// - `min_answer_tokens`: below this many affordable tokens the request is refused (402).
/// - `default_cap`: `max_tokens` when the client gave none and the catalog knows no limit.
pub fn quote(
    price: &ModelPrice,
    prompt_tokens_bound: u64,
    requested: Option<u64>,
    remaining: Option<Money>,
    min_answer_tokens: u64,
    default_cap: u64,
) -> Result<Quote, Unaffordable> {
    let model_cap = price.completion_cap(default_cap);
    let wanted = requested.unwrap_or(model_cap).min(model_cap).max(1);
    let fixed = price
        .prompt
        .checked_mul_u64(prompt_tokens_bound)
        .and_then(|p| p.checked_add(price.request))
        .unwrap_or(Money::from_decimal(rust_decimal_max()));
    let max_tokens = match remaining {
        None => wanted,
        Some(remaining) => {
            let minimum = price
                .completion
                .checked_mul_u64(min_answer_tokens.min(wanted))
                .and_then(|c| c.checked_add(fixed))
                .unwrap_or(Money::from_decimal(rust_decimal_max()));
            if minimum > remaining {
                return Err(Unaffordable { minimum, remaining });
            }
            if price.completion.is_zero() {
                wanted
            } else {
                let left = remaining.saturating_sub_floor_zero(fixed);
                wanted.min(left.whole_units_of(price.completion))
            }
        }
    };
    let worst_case = price
        .completion
        .checked_mul_u64(max_tokens)
        .and_then(|c| c.checked_add(fixed))
        .unwrap_or(Money::from_decimal(rust_decimal_max()));
    Ok(Quote {
        max_tokens,
        worst_case,
        adjusted: requested != Some(max_tokens),
    })
}

/// Quotes a request that generates no output (embeddings): the worst case is the input alone,
/// refused when it does not fit in what remains.
pub fn quote_input(
    price: &ModelPrice,
    prompt_tokens_bound: u64,
    remaining: Option<Money>,
) -> Result<Quote, Unaffordable> {
    let worst_case = price
        .prompt
        .checked_mul_u64(prompt_tokens_bound)
        .and_then(|p| p.checked_add(price.request))
        .unwrap_or(Money::from_decimal(rust_decimal_max()));
    if let Some(remaining) = remaining
        && worst_case > remaining
    {
        return Err(Unaffordable {
            minimum: worst_case,
            remaining,
        });
    }
    Ok(Quote {
        max_tokens: 0,
        worst_case,
        adjusted: false,
    })
}

fn rust_decimal_max() -> orteam_core::rust_decimal::Decimal {
    orteam_core::rust_decimal::Decimal::MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn gpt4o() -> ModelPrice {
        ModelPrice {
            prompt: m("0.0000025"),
            completion: m("0.00001"),
            request: Money::ZERO,
            media: Money::ZERO,
            max_completion_tokens: Some(16384),
            context_length: Some(128000),
        }
    }

    #[test]
    fn unconstrained_request_passes_through() {
        let q = quote(&gpt4o(), 100, Some(500), None, 16, 4096).unwrap();
        assert_eq!(q.max_tokens, 500);
        assert!(!q.adjusted);
        assert_eq!(q.worst_case, m("0.00525"));
    }

    #[test]
    fn clamps_to_the_remaining_budget() {
        // 0.01 left: prompt 100 × 0.0000025 = 0.00025 → 0.00975 / 0.00001 = 975 tokens.
        let q = quote(&gpt4o(), 100, Some(4000), Some(m("0.01")), 16, 4096).unwrap();
        assert_eq!(q.max_tokens, 975);
        assert!(q.adjusted);
        assert!(q.worst_case <= m("0.01"));
        assert_eq!(q.worst_case, m("0.01"));
    }

    #[test]
    fn missing_max_tokens_gets_the_affordable_cap() {
        let q = quote(&gpt4o(), 100, None, Some(m("100")), 16, 4096).unwrap();
        assert_eq!(q.max_tokens, 16384);
        assert!(q.adjusted);
    }

    #[test]
    fn refuses_when_not_even_a_minimal_answer_fits() {
        let e = quote(&gpt4o(), 100, Some(100), Some(m("0.0004")), 16, 4096).unwrap_err();
        assert_eq!(e.minimum, m("0.00041"));
    }

    #[test]
    fn several_answers_are_held_several_times() {
        let p = gpt4o().for_answers(3).unwrap();
        let q = quote(&p, 100, Some(100), None, 16, 4096).unwrap();
        assert_eq!(q.worst_case, m("0.00325"), "0.00025 + 3 × 100 × 0.00001");
    }

    #[test]
    fn input_only_quotes() {
        let q = quote_input(&gpt4o(), 1000, Some(m("0.01"))).unwrap();
        assert_eq!((q.max_tokens, q.worst_case), (0, m("0.0025")));
        let e = quote_input(&gpt4o(), 1000, Some(m("0.002"))).unwrap_err();
        assert_eq!(e.minimum, m("0.0025"));
    }

    #[test]
    fn free_models_are_never_clamped() {
        let free = ModelPrice {
            prompt: Money::ZERO,
            completion: Money::ZERO,
            request: Money::ZERO,
            media: Money::ZERO,
            max_completion_tokens: None,
            context_length: Some(8192),
        };
        let q = quote(&free, 100, Some(300), Some(Money::ZERO), 16, 4096).unwrap();
        assert_eq!(q.max_tokens, 300);
        assert_eq!(q.worst_case, Money::ZERO);
    }
}
