//! Workspaces, the current key's budgets, the newer model calls and `/activity` by member,
//! against the simulator.

use chrono::Duration as TimeDelta;
use orteam_core::{Clock, Money, Window};
use orteam_openrouter::types::activity::ActivityParams;
use orteam_openrouter::types::chat::{ChatRequest, Message};
use orteam_openrouter::types::guardrails::CreateGuardrailRequest;
use orteam_openrouter::types::keys::CreateKeyRequest;
use orteam_openrouter::types::workspaces::{CreateWorkspaceRequest, UpdateWorkspaceRequest};
use orteam_openrouter::{Pagination, Patch};
use secrecy::ExposeSecret;

use crate::common::{client_with, mgmt, sim};

#[tokio::test]
async fn workspaces_crud_members_and_scoped_keys() {
    let sim = sim().await;
    let c = mgmt(&sim);
    let ws = c
        .create_workspace(&CreateWorkspaceRequest {
            name: "Research".into(),
            slug: "research".into(),
            description: None,
        })
        .await
        .unwrap();
    assert_eq!(ws.slug, "research");
    // The default workspace and ours.
    let all = c.list_workspaces(&Pagination::default()).await.unwrap();
    assert_eq!(all.total_count, Some(2));
    // Paths accept the slug.
    assert_eq!(c.get_workspace("research").await.unwrap().id, ws.id);
    let renamed = c
        .update_workspace(
            &ws.id,
            &UpdateWorkspaceRequest {
                name: Some("Lab".into()),
                description: Patch::Set("the lab".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "Lab");
    assert_eq!(renamed.description.as_deref(), Some("the lab"));

    let members = c
        .organization_members(&Pagination::default())
        .await
        .unwrap();
    let user = members.data[1].id.clone();
    let added = c
        .add_workspace_members(&ws.id, &[user.clone(), user.clone()])
        .await
        .unwrap();
    assert_eq!(added.added_count, 1);
    let listed = c
        .workspace_members(&ws.id, &Pagination::default())
        .await
        .unwrap();
    assert_eq!(listed.data.len(), 1);
    assert_eq!(listed.data[0].user_id, user);

    // A key created in the workspace says so; an unknown workspace is a 400.
    let key = c
        .create_key(&CreateKeyRequest::new("ws-key").workspace("research"))
        .await
        .unwrap();
    assert_eq!(key.data.workspace_id.as_deref(), Some(ws.id.as_str()));
    let err = c
        .create_key(&CreateKeyRequest::new("nowhere").workspace("no-such-workspace"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    // A workspace still holding keys is not deleted.
    let err = c.delete_workspace(&ws.id).await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    c.delete_key(&key.data.hash).await.unwrap();
    let removed = c
        .remove_workspace_members(&ws.id, std::slice::from_ref(&user))
        .await
        .unwrap();
    assert_eq!(removed.removed_count, 1);
    assert!(c.delete_workspace(&ws.id).await.unwrap().deleted);
    assert_eq!(
        c.get_workspace(&ws.id).await.unwrap_err().status(),
        Some(404)
    );
}

#[tokio::test]
async fn the_current_key_reports_its_budgets_and_last_use() {
    let sim = sim().await;
    let c = mgmt(&sim);
    let created = c
        .create_key(
            &CreateKeyRequest::new("budgeted")
                .limit(Money::parse("5").unwrap())
                .limit_reset(Window::Daily),
        )
        .await
        .unwrap();
    assert_eq!(created.data.last_used_at, None);
    let g = c
        .create_guardrail(&CreateGuardrailRequest {
            limit_usd: Some(Money::parse("2").unwrap()),
            reset_interval: Some(Window::Monthly),
            ..CreateGuardrailRequest::new("tight")
        })
        .await
        .unwrap();
    c.assign_keys(&g.id, std::slice::from_ref(&created.data.hash))
        .await
        .unwrap();
    let ic = client_with(&sim, created.key.expose_secret());
    let done = ic
        .chat(&ChatRequest::new(
            "openai/gpt-4o-mini",
            vec![Message::user("hi [[sim:tokens=9]]")],
        ))
        .await
        .unwrap();
    let cost = done.response.usage.unwrap().cost;

    let info = ic.current_key().await.unwrap();
    assert_eq!(info.budgets.len(), 2, "{:?}", info.budgets);
    let own = info
        .budgets
        .iter()
        .find(|b| b.scope == "key_limit")
        .unwrap();
    assert_eq!(own.limit_usd, Money::parse("5").unwrap());
    assert_eq!(own.spend_usd, cost);
    assert!(own.resets_at.is_some());
    let effective = info.effective_budget.unwrap();
    assert_eq!(effective.scope, "api_key");
    assert_eq!(effective.guardrail_id.as_deref(), Some(g.id.as_str()));
    assert_eq!(
        effective.remaining_usd,
        Money::parse("2").unwrap().checked_sub(cost).unwrap()
    );
    assert!(info.workspace_id.is_some());
    assert_eq!(info.allowed_data_regions, vec!["global".to_owned()]);

    c.clear_cache();
    let key = c.get_key(&created.data.hash).await.unwrap();
    let used = key.last_used_at.expect("last_used_at moves with use");
    assert!(
        used >= key.created_at && used <= sim.clock().now(),
        "{used}"
    );
}

#[tokio::test]
async fn model_count_one_model_and_pages() {
    let sim = sim().await;
    let c = mgmt(&sim);
    let all = c.models(&Default::default()).await.unwrap();
    let count = c.models_count(&[]).await.unwrap();
    assert_eq!(count, all.data.len() as u64);
    assert_eq!(all.total_count, Some(count));
    let one = c.model("openai", "gpt-4o-mini").await.unwrap();
    assert_eq!(one.id, "openai/gpt-4o-mini");
    let page = c
        .models(&orteam_openrouter::types::models::ModelsParams {
            offset: Some(1),
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.data.len(), 2);
    assert_eq!(page.data[0].id, all.data[1].id);
    let endpoints = c.model_endpoints("openai", "gpt-4o-mini").await.unwrap();
    let tool_choice = endpoints.endpoints[0].supports_tool_choice.unwrap();
    assert!(tool_choice.required && tool_choice.function);
}

#[tokio::test]
async fn activity_narrows_to_one_member() {
    let sim = sim().await;
    let c = mgmt(&sim);
    let members = c
        .organization_members(&Pagination::default())
        .await
        .unwrap();
    let (grace, alan) = (members.data[1].id.clone(), members.data[2].id.clone());
    for (user, tokens) in [(&grace, 9), (&alan, 20)] {
        let key = c
            .create_key(&CreateKeyRequest {
                creator_user_id: Some(user.clone()),
                ..CreateKeyRequest::new(format!("key of {user}"))
            })
            .await
            .unwrap();
        client_with(&sim, key.key.expose_secret())
            .chat(&ChatRequest::new(
                "openai/gpt-4o-mini",
                vec![Message::user(format!("hi [[sim:tokens={tokens}]]"))],
            ))
            .await
            .unwrap();
    }
    sim.clock().advance(TimeDelta::days(1));
    let only = |user: &str| ActivityParams {
        user_id: Some(user.to_owned()),
        ..Default::default()
    };
    let g = c.activity(&only(&grace)).await.unwrap();
    let a = c.activity(&only(&alan)).await.unwrap();
    assert_eq!(g.iter().map(|r| r.completion_tokens).sum::<u64>(), 9);
    assert_eq!(a.iter().map(|r| r.completion_tokens).sum::<u64>(), 20);
    assert!(g[0].workspace_id.is_some());
}
