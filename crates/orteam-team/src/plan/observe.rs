//! Reading the world: the ledger's directory, OpenRouter's keys, workspaces and guardrails, and
//! its model catalog.

use std::collections::BTreeSet;
use std::sync::Arc;

use orteam_ledger::Directory;
use orteam_openrouter::Client;
use orteam_openrouter::Pagination;
use orteam_openrouter::types::guardrails::{Guardrail, KeyAssignment, ListGuardrailsParams};
use orteam_openrouter::types::keys::Key;
use orteam_openrouter::types::models::ModelsParams;
use orteam_openrouter::types::workspaces::Workspace;

use crate::error::TeamError;
use crate::file::ResolvedTeam;

/// What the world looks like now.
#[derive(Debug, Clone)]
pub struct Observed {
    pub dir: Arc<Directory>,
    /// Every key at OpenRouter (disabled ones included).
    pub keys: Vec<Key>,
    /// OpenRouter's workspaces, guardrails and guardrail key assignments (the second line of
    /// defence: see `defence.rs`).
    pub workspaces: Vec<Workspace>,
    pub guardrails: Vec<Guardrail>,
    pub key_assignments: Vec<KeyAssignment>,
}

/// Every item of an `offset`/`limit` list.
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, orteam_openrouter::ClientError>
where
    F: FnMut(Pagination) -> Fut,
    Fut: std::future::Future<
            Output = Result<orteam_openrouter::Page<T>, orteam_openrouter::ClientError>,
        >,
{
    let mut out = Vec::new();
    loop {
        let got = page(Pagination {
            offset: Some(u32::try_from(out.len()).unwrap_or(u32::MAX)),
            limit: Some(100),
        })
        .await?;
        let n = got.data.len();
        out.extend(got.data);
        let total = got
            .total_count
            .map_or(out.len(), |t| usize::try_from(t).unwrap_or(usize::MAX));
        if n == 0 || out.len() >= total {
            return Ok(out);
        }
    }
}

/// Reads what the second line of defence plans from: workspaces, guardrails and their key
/// assignments (orteam's are recognised by name, so they are read even when the team file no
/// longer asks for them, to remove them).
async fn observe_openrouter(obs: &mut Observed, client: &Client) -> Result<(), TeamError> {
    obs.guardrails = all_pages(|p| async move {
        let params = ListGuardrailsParams {
            offset: p.offset,
            limit: p.limit,
            workspace_id: None,
        };
        client.list_guardrails(&params).await
    })
    .await
    .map_err(TeamError::upstream("listing guardrails (GET /guardrails)"))?;
    obs.key_assignments = all_pages(|p| async move { client.key_assignments(&p).await })
        .await
        .map_err(TeamError::upstream("listing guardrail key assignments"))?;
    obs.workspaces = all_pages(|p| async move { client.list_workspaces(&p).await })
        .await
        .map_err(TeamError::upstream("listing workspaces (GET /workspaces)"))?;
    Ok(())
}

/// Reads the ledger directory and OpenRouter's keys.
pub async fn observe(
    ledger: &orteam_ledger::Ledger,
    client: &Client,
) -> Result<Observed, TeamError> {
    ledger
        .refresh_if_changed()
        .await
        .map_err(TeamError::ledger("reading the directory"))?;
    let keys = client
        .list_all_keys(Some(true))
        .await
        .map_err(TeamError::upstream("listing keys (GET /keys)"))?;
    let mut obs = Observed {
        dir: ledger.directory(),
        keys,
        workspaces: Vec::new(),
        guardrails: Vec::new(),
        key_assignments: Vec::new(),
    };
    observe_openrouter(&mut obs, client).await?;
    Ok(obs)
}

/// Checks every model the file names against OpenRouter's catalog (`GET /models`, every
/// modality). A name ending in `*` must match at least one model.
pub async fn check_models(team: &ResolvedTeam, client: &Client) -> Result<(), TeamError> {
    let named = team.named_models();
    if named.is_empty() {
        return Ok(());
    }
    let list = client
        .models(&ModelsParams {
            output_modalities: vec!["all".into()],
            ..ModelsParams::default()
        })
        .await
        .map_err(TeamError::upstream("listing models (GET /models)"))?;
    let mut catalog = BTreeSet::new();
    for m in &list.data {
        catalog.insert(m.id.clone());
        if let Some(s) = &m.canonical_slug {
            catalog.insert(s.clone());
        }
    }
    let unknown: Vec<String> = named
        .into_iter()
        .filter(|m| match m.strip_suffix('*') {
            Some(prefix) => !catalog.iter().any(|c| c.starts_with(prefix)),
            None => !catalog.contains(*m),
        })
        .map(str::to_owned)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let hint = unknown
        .first()
        .and_then(|u| closest(u, &catalog))
        .map(|c| format!(" (did you mean {c:?}?)"))
        .unwrap_or_default();
    Err(TeamError::UnknownModels {
        models: unknown,
        hint,
    })
}

fn closest<'a>(name: &str, catalog: &'a BTreeSet<String>) -> Option<&'a String> {
    let slug = name.rsplit('/').next().unwrap_or(name);
    catalog
        .iter()
        .find(|c| c.rsplit('/').next() == Some(slug))
        .or_else(|| catalog.iter().find(|c| c.contains(slug)))
}
