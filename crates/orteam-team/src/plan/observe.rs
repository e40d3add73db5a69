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
    /// Every admin token (revoked ones included); the plan touches only its org's file
    /// tokens (`file_org`).
    pub tokens: Vec<orteam_ledger::AdminToken>,
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
        tokens: ledger
            .admin_tokens()
            .await
            .map_err(TeamError::ledger("reading admin tokens"))?,
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
    let Some(first) = unknown.first() else {
        return Ok(());
    };
    if team.model_sites.path.as_os_str().is_empty() {
        let hint = closest(first, &catalog)
            .map(|c| format!(" (did you mean {c:?}?)"))
            .unwrap_or_default();
        return Err(TeamError::UnknownModels {
            models: unknown,
            hint,
        });
    }
    // `team.toml:12:15: unknown model "x"; did you mean "a", "b"?`, and where the others are.
    let mut message = format!("unknown model {first:?}");
    let near = nearest(first, &catalog);
    if !near.is_empty() {
        let list: Vec<String> = near.iter().map(|c| format!("{c:?}")).collect();
        message.push_str(&format!("; did you mean {}?", list.join(", ")));
    }
    let others: Vec<String> = unknown
        .iter()
        .skip(1)
        .map(|m| match team.model_sites.sites.get(m) {
            Some((line, column)) => format!("{m:?} ({line}:{column})"),
            None => format!("{m:?}"),
        })
        .collect();
    if !others.is_empty() {
        message.push_str(&format!("; also unknown: {}", others.join(", ")));
    }
    Err(TeamError::File(team.model_sites.error_at(first, message)))
}

/// Up to three catalog ids nearest to `name` (edit distance, ties by id), none when nothing is
/// close enough to be a plausible typo.
fn nearest<'a>(name: &str, catalog: &'a BTreeSet<String>) -> Vec<&'a String> {
    let name = name.trim_end_matches('*');
    let slug = name.rsplit('/').next().unwrap_or(name);
    let mut scored: Vec<(usize, &String)> = catalog
        .iter()
        .map(|c| {
            let c_slug = c.rsplit('/').next().unwrap_or(c);
            let d = strsim::levenshtein(name, c).min(strsim::levenshtein(slug, c_slug) + 1);
            (d, c)
        })
        .filter(|(d, _)| *d <= (slug.chars().count() / 3).max(2))
        .collect();
    scored.sort();
    let best = scored.first().map_or(0, |s| s.0);
    scored
        .into_iter()
        .take_while(|(d, _)| *d <= best + 2)
        .take(3)
        .map(|(_, c)| c)
        .collect()
}

fn closest<'a>(name: &str, catalog: &'a BTreeSet<String>) -> Option<&'a String> {
    let slug = name.rsplit('/').next().unwrap_or(name);
    catalog
        .iter()
        .find(|c| c.rsplit('/').next() == Some(slug))
        .or_else(|| catalog.iter().find(|c| c.contains(slug)))
}
