use chrono::{Duration as TimeDelta, Utc};
use orteam_core::{Clock, Money};
use orteam_openrouter::types::activity::ActivityParams;
use orteam_openrouter::types::chat::{ChatRequest, Message};

use crate::common::{inference, mgmt, sim};

#[tokio::test]
async fn credits_follow_purchases_and_spend() {
    let sim = sim().await;
    let c = mgmt(&sim).with_api_key(sim.provisioning_key().into());
    let before = c.credits().await.unwrap();
    assert_eq!(before.balance(), sim.balance());
    sim.add_credits(Money::parse("12.34").unwrap());
    c.clear_cache();
    let after = c.credits().await.unwrap();
    assert_eq!(
        after.total_credits,
        before
            .total_credits
            .plus(Money::parse("12.34").unwrap())
            .unwrap()
    );

    let (ic, _, _) = inference(&sim, "spender");
    let done = ic
        .chat(&ChatRequest::new(
            "openai/gpt-4o",
            vec![Message::user("hi [[sim:tokens=7]]")],
        ))
        .await
        .unwrap();
    let cost = done.response.usage.unwrap().cost;
    c.clear_cache();
    let spent = c.credits().await.unwrap();
    assert_eq!(spent.total_usage, after.total_usage.plus(cost).unwrap());
    assert_eq!(spent.balance(), sim.balance());
}

#[tokio::test]
async fn generation_lookup_matches_the_completion() {
    let sim = sim().await;
    let (c, _, _) = inference(&sim, "gen");
    let mut req = ChatRequest::new(
        "openai/gpt-4o-mini",
        vec![Message::user("hello [[sim:tokens=9]]")],
    );
    req.user = Some("end-user-42".into());
    let done = c.chat(&req).await.unwrap();
    let id = done.generation_id().to_owned();
    assert_eq!(done.response.id, id);
    let g = c.generation(&id).await.unwrap();
    let u = done.response.usage.unwrap();
    assert_eq!(g.id, id);
    assert_eq!(g.total_cost, Some(u.cost));
    assert_eq!(g.tokens_prompt, Some(u.prompt_tokens));
    assert_eq!(g.tokens_completion, Some(9));
    assert_eq!(g.external_user.as_deref(), Some("end-user-42"));
    assert_eq!(g.model.as_deref(), Some("openai/gpt-4o-mini"));
    assert_eq!(g.streamed, Some(false));
    // The management key can read it too (simulator choice); unknown ids are 404.
    assert_eq!(mgmt(&sim).generation(&id).await.unwrap().id, id);
    assert!(c.generation("gen-0-nope").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn activity_rows_and_filters() {
    let sim = sim().await;
    let (c1, _, h1) = inference(&sim, "a1");
    let (c2, _, _) = inference(&sim, "a2");
    let r1 = c1
        .chat(&ChatRequest::new(
            "openai/gpt-4o",
            vec![Message::user("x [[sim:tokens=11]]")],
        ))
        .await
        .unwrap();
    let r2 = c2
        .chat(&ChatRequest::new(
            "openai/gpt-4o",
            vec![Message::user("y [[sim:tokens=3]]")],
        ))
        .await
        .unwrap();
    let m = mgmt(&sim);
    let today = sim.clock().now().date_naive();
    // Today never shows; move to tomorrow.
    assert!(
        m.activity(&ActivityParams::default())
            .await
            .unwrap()
            .iter()
            .all(|r| r.day() != Some(today))
    );
    sim.clock().advance(TimeDelta::days(1));
    let rows = m
        .activity(&ActivityParams {
            date: Some(today),
            ..Default::default()
        })
        .await
        .unwrap();
    let gpt: Vec<_> = rows.iter().filter(|r| r.model == "openai/gpt-4o").collect();
    assert_eq!(gpt.len(), 1);
    let u1 = r1.response.usage.unwrap();
    let u2 = r2.response.usage.unwrap();
    assert_eq!(gpt[0].usage, u1.cost.plus(u2.cost).unwrap());
    assert_eq!(gpt[0].requests, 2);
    assert_eq!(gpt[0].completion_tokens, 14);
    assert_eq!(gpt[0].day(), Some(today));
    let only1 = m
        .activity(&ActivityParams {
            date: Some(today),
            api_key_hash: Some(h1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(only1.len(), 1);
    assert_eq!(only1[0].usage, u1.cost);
    assert_eq!(only1[0].completion_tokens, 11);
    // A date outside the window gives no rows.
    let old = m
        .activity(&ActivityParams {
            date: Some((Utc::now() - TimeDelta::days(400)).date_naive()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(old.is_empty());
    // user_id filter is accepted (no member made requests).
    let none = m
        .activity(&ActivityParams {
            user_id: Some("user_nobody".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}
