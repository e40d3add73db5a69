//! Reading the world: the ledger's directory, OpenRouter's keys and its model catalog.

use std::collections::BTreeSet;
use std::sync::Arc;

use orteam_ledger::Directory;
use orteam_openrouter::Client;
use orteam_openrouter::types::keys::Key;
use orteam_openrouter::types::models::ModelsParams;

use crate::error::TeamError;
use crate::file::ResolvedTeam;

/// What the world looks like now.
#[derive(Debug, Clone)]
pub struct Observed {
    pub dir: Arc<Directory>,
    /// Every key at OpenRouter (disabled ones included).
    pub keys: Vec<Key>,
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
    Ok(Observed {
        dir: ledger.directory(),
        keys,
    })
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
