use orteam_core::Money;
use orteam_openrouter::types::chat::{ChatRequest, Message};
use orteam_openrouter::types::models::ModelsParams;

use crate::common::{inference, mgmt, sim};

#[tokio::test]
async fn catalog_endpoints_user_models_and_zdr() {
    let sim = sim().await;
    let c = mgmt(&sim);
    let list = c.models(&ModelsParams::default()).await.unwrap();
    assert!(list.data.len() >= 5);
    let gpt = list.data.iter().find(|m| m.id == "openai/gpt-4o").unwrap();
    assert!(gpt.pricing.prompt.unwrap() > Money::ZERO);
    assert!(gpt.context_length.is_some());

    let tools = c
        .models(&ModelsParams {
            supported_parameters: vec!["tools".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!tools.data.is_empty());
    assert!(
        tools
            .data
            .iter()
            .all(|m| m.supported_parameters.iter().any(|p| p == "tools"))
    );

    let eps = c.model_endpoints("openai", "gpt-4o").await.unwrap();
    assert_eq!(eps.id, "openai/gpt-4o");
    assert!(!eps.endpoints.is_empty());
    let ep = &eps.endpoints[0];
    assert_eq!(ep.pricing.prompt, gpt.pricing.prompt);
    if let Some(u) = ep.uptime_last_30m {
        assert!((0.0..=100.0).contains(&u));
    }
    let by_id = c
        .model_endpoints_by_id("google/gemma-2-9b-it:free")
        .await
        .unwrap();
    assert_eq!(by_id.id, "google/gemma-2-9b-it:free");
    assert!(
        c.model_endpoints("nobody", "nothing")
            .await
            .unwrap_err()
            .is_not_found()
    );

    let (ic, _, _) = inference(&sim, "u");
    let user = ic.user_models().await.unwrap();
    assert!(!user.data.is_empty());

    let zdr = c.zdr_endpoints().await.unwrap();
    assert!(
        zdr.iter()
            .all(|e| e.model_id.is_some() || !e.name.is_empty())
    );

    // Models need no auth.
    let anon = orteam_openrouter::Client::builder()
        .base_url(sim.base_url())
        .build()
        .unwrap();
    assert_eq!(
        anon.models(&ModelsParams::default())
            .await
            .unwrap()
            .data
            .len(),
        list.data.len()
    );
}

/// `usage.cost` equals tokens × catalog price, exactly, for every paid model.
#[tokio::test]
async fn cost_equals_tokens_times_catalog_price() {
    let sim = sim().await;
    sim.add_credits(Money::from_cents(100_000));
    let c = mgmt(&sim);
    let (ic, _, _) = inference(&sim, "pricer");
    let catalog = c.models(&ModelsParams::default()).await.unwrap();
    let mut checked = 0;
    for model in &catalog.data {
        for tokens in [1u32, 17, 64] {
            let done = ic
                .chat(&ChatRequest::new(
                    model.id.clone(),
                    vec![Message::user(format!(
                        "price check [[sim:tokens={tokens}]]"
                    ))],
                ))
                .await
                .unwrap_or_else(|e| panic!("{}: {e:?}", model.id));
            let u = done.response.usage.unwrap();
            assert_eq!(u.completion_tokens, u64::from(tokens), "{}", model.id);
            let expected = expected_cost(&model.pricing, &u);
            assert_eq!(u.cost, expected, "{} with {tokens} tokens", model.id);
            if u.prompt_tokens_details
                .as_ref()
                .is_none_or(|d| d.cached_tokens == 0)
                && u.completion_tokens_details
                    .as_ref()
                    .is_none_or(|d| d.reasoning_tokens == 0)
            {
                assert_eq!(
                    model.pricing.cost(u.prompt_tokens, u.completion_tokens),
                    Some(expected)
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, catalog.data.len() * 3);
}

/// (prompt − cached) × prompt + cached × cache_read + (completion − reasoning) × completion
/// + reasoning × internal_reasoning + request, with the documented fallbacks.
fn expected_cost(
    p: &orteam_openrouter::types::models::Pricing,
    u: &orteam_openrouter::types::chat::Usage,
) -> Money {
    let cached = u
        .prompt_tokens_details
        .as_ref()
        .map_or(0, |d| d.cached_tokens);
    let reasoning = u
        .completion_tokens_details
        .as_ref()
        .map_or(0, |d| d.reasoning_tokens);
    let terms = [
        p.prompt.unwrap().times(u.prompt_tokens - cached).unwrap(),
        p.input_cache_read
            .unwrap_or(p.prompt.unwrap())
            .times(cached)
            .unwrap(),
        p.completion
            .unwrap()
            .times(u.completion_tokens - reasoning)
            .unwrap(),
        p.internal_reasoning
            .unwrap_or(p.completion.unwrap())
            .times(reasoning)
            .unwrap(),
        p.request.unwrap_or(Money::ZERO),
    ];
    terms.iter().sum()
}

/// Cache reads and reasoning tokens are priced at their own catalog rates, for every model:
/// the published `internal_reasoning` price is the rate that bills.
#[tokio::test]
async fn cost_with_cache_reads_and_reasoning() {
    let sim = sim().await;
    sim.add_credits(Money::from_cents(100_000));
    let c = mgmt(&sim);
    let (ic, _, _) = inference(&sim, "pricer2");
    let catalog = c.models(&ModelsParams::default()).await.unwrap();
    let mut with_reasoning = 0;
    for model in &catalog.data {
        let priced_reasoning = model
            .pricing
            .internal_reasoning
            .is_some_and(|p| !p.is_zero());
        let reasoning = 6;
        let done = ic
            .chat(&ChatRequest::new(
                model.id.clone(),
                vec![Message::user(format!(
                    "a long enough prompt to have cacheable tokens in it, repeated, repeated \
                     [[sim:tokens=20]] [[sim:reasoning={reasoning}]] [[sim:cached=5]]"
                ))],
            ))
            .await
            .unwrap();
        let u = done.response.usage.unwrap();
        assert_eq!(
            u.completion_tokens_details
                .as_ref()
                .unwrap()
                .reasoning_tokens,
            reasoning,
            "{}",
            model.id
        );
        assert_eq!(
            u.prompt_tokens_details.as_ref().unwrap().cached_tokens,
            5,
            "{}",
            model.id
        );
        assert_eq!(u.cost, expected_cost(&model.pricing, &u), "{}", model.id);
        with_reasoning += usize::from(priced_reasoning);
    }
    assert!(
        with_reasoning >= 2,
        "the catalog should have paid models with a published reasoning price"
    );
}
