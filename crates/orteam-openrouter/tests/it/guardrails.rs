use orteam_core::{Money, Window};
use orteam_openrouter::types::guardrails::{
    CreateGuardrailRequest, ListGuardrailsParams, UpdateGuardrailRequest,
};
use orteam_openrouter::{Pagination, Patch};

use crate::common::{mgmt, sim};

#[tokio::test]
async fn guardrail_crud_and_assignments() {
    let sim = sim().await;
    let c = mgmt(&sim);
    let (_, hash) = sim.create_key("guarded", None, None);

    let mut req = CreateGuardrailRequest::new("prod");
    req.description = Some("production".into());
    req.limit_usd = Some(Money::parse("25.5").unwrap());
    req.reset_interval = Some(Window::Monthly);
    req.allowed_providers = Some(vec!["openai".into()]);
    req.allowed_models = Some(vec!["openai/gpt-4o".into()]);
    req.enforce_zdr = Some(false);
    let g = c.create_guardrail(&req).await.unwrap();
    assert_eq!(g.name, "prod");
    assert_eq!(g.limit_usd, Some(Money::parse("25.5").unwrap()));
    assert_eq!(g.reset_interval, Some(Window::Monthly));
    assert_eq!(
        g.allowed_providers.as_deref(),
        Some(&["openai".to_string()][..])
    );
    assert!(g.allowed_models.as_ref().is_some_and(|m| m.len() == 1));
    assert!(g.created_at.is_some());

    assert_eq!(c.get_guardrail(&g.id).await.unwrap().id, g.id);
    let page = c
        .list_guardrails(&ListGuardrailsParams::default())
        .await
        .unwrap();
    assert!(page.data.iter().any(|x| x.id == g.id));
    assert_eq!(page.total_count, Some(page.data.len() as u64));

    let upd = c
        .update_guardrail(
            &g.id,
            &UpdateGuardrailRequest {
                description: Patch::Clear,
                limit_usd: Patch::Clear,
                ignored_providers: Patch::Set(vec!["azure".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(upd.description, None);
    assert_eq!(upd.limit_usd, None);
    assert_eq!(
        upd.ignored_providers.as_deref(),
        Some(&["azure".to_string()][..])
    );
    assert_eq!(upd.name, "prod");

    // Keys.
    let n = c
        .assign_keys(&g.id, std::slice::from_ref(&hash))
        .await
        .unwrap();
    assert_eq!(n.assigned_count, 1);
    let all = c.key_assignments(&Pagination::default()).await.unwrap();
    assert!(
        all.data
            .iter()
            .any(|a| a.key_hash == hash && a.guardrail_id == g.id)
    );
    let mine = c
        .guardrail_key_assignments(&g.id, &Pagination::new(0, 10))
        .await
        .unwrap();
    assert_eq!(mine.data.len(), 1);
    assert_eq!(mine.total_count, Some(1));
    assert_eq!(mine.data[0].key_name.as_deref(), Some("guarded"));
    let n = c
        .unassign_keys(&g.id, std::slice::from_ref(&hash))
        .await
        .unwrap();
    assert_eq!(n.unassigned_count, 1);
    assert!(
        c.guardrail_key_assignments(&g.id, &Pagination::default())
            .await
            .unwrap()
            .data
            .is_empty()
    );

    // Members.
    let members = c
        .organization_members(&Pagination::default())
        .await
        .unwrap();
    let uid = members.data[0].id.clone();
    let n = c
        .assign_members(&g.id, std::slice::from_ref(&uid))
        .await
        .unwrap();
    assert_eq!(n.assigned_count, 1);
    let all = c.member_assignments(&Pagination::default()).await.unwrap();
    assert!(
        all.data
            .iter()
            .any(|a| a.user_id == uid && a.guardrail_id == g.id)
    );
    let mine = c
        .guardrail_member_assignments(&g.id, &Pagination::default())
        .await
        .unwrap();
    assert_eq!(mine.data.len(), 1);
    assert_eq!(mine.data[0].user_id, uid);
    let n = c
        .unassign_members(&g.id, std::slice::from_ref(&uid))
        .await
        .unwrap();
    assert_eq!(n.unassigned_count, 1);

    assert!(c.delete_guardrail(&g.id).await.unwrap().deleted);
    assert!(c.get_guardrail(&g.id).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn organization_members_page() {
    let sim = sim().await;
    let c = mgmt(&sim);
    let all = c
        .organization_members(&Pagination::default())
        .await
        .unwrap();
    assert!(!all.data.is_empty());
    assert_eq!(all.total_count, Some(all.data.len() as u64));
    assert!(all.data.iter().all(|m| m.id.starts_with("user_")));
    assert!(all.data.iter().any(|m| m.is_admin()));
    let one = c
        .organization_members(&Pagination::new(1, 1))
        .await
        .unwrap();
    assert_eq!(one.data.len(), 1);
    assert_eq!(one.data[0].id, all.data[1].id);
    assert_eq!(one.total_count, all.total_count);
}
