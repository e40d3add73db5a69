//! The price table: upstream's `/models`, fetched at start and refreshed periodically.
//!
//! A model missing from the table is never treated as free: the gateway refreshes the table
//! once (at most every [`MISS_REFRESH_INTERVAL`]) and refuses the request if the model is still
//! unknown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orteam_core::Money;
use orteam_openrouter::types::models::Model;
use parking_lot::{Mutex, RwLock};

use crate::pricing::ModelPrice;

/// How often an unknown model may trigger a refresh.
pub const MISS_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// A snapshot of the catalog: model id (and canonical slug) → prices.
#[derive(Debug, Default)]
pub struct PriceTable {
    prices: HashMap<String, Arc<ModelPrice>>,
    /// Canonical slug (`openai/gpt-4o-mini-2024-07-18`) → model id (`openai/gpt-4o-mini`):
    /// upstream may name the served model either way.
    slugs: HashMap<String, String>,
    /// Model ids in catalog order, for `GET /v1/models`.
    pub models: Vec<Model>,
}

impl PriceTable {
    pub fn from_models(models: Vec<Model>) -> Self {
        let mut prices = HashMap::with_capacity(models.len() * 2);
        let mut slugs = HashMap::with_capacity(models.len());
        for m in &models {
            if let Some(slug) = &m.canonical_slug
                && slug != &m.id
            {
                slugs.insert(slug.clone(), m.id.clone());
            }
            let p = &m.pricing;
            // A model without published prices is left out: never treated as free.
            let (Some(prompt), Some(completion)) = (p.prompt, p.completion) else {
                continue;
            };
            // Reasoning tokens are completion tokens; if upstream prices them apart, hold the
            // dearer rate so the worst case stays a bound.
            let completion = match p.internal_reasoning {
                Some(r) if r > completion => r,
                _ => completion,
            };
            let price = Arc::new(ModelPrice {
                prompt,
                completion,
                request: p.request.unwrap_or(Money::ZERO),
                media: p.image.unwrap_or(Money::ZERO),
                max_completion_tokens: m
                    .top_provider
                    .as_ref()
                    .and_then(|t| t.max_completion_tokens),
                context_length: m.context_length,
            });
            if let Some(slug) = &m.canonical_slug {
                prices.insert(slug.clone(), price.clone());
            }
            prices.insert(m.id.clone(), price);
        }
        PriceTable {
            prices,
            slugs,
            models,
        }
    }

    /// The model id `name` stands for: itself, or the id whose canonical slug it is.
    pub fn model_id<'a>(&'a self, name: &'a str) -> &'a str {
        self.slugs.get(name).map_or(name, String::as_str)
    }

    pub fn get(&self, model: &str) -> Option<Arc<ModelPrice>> {
        self.prices.get(model).cloned()
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// The live catalog shared by all workers.
#[derive(Debug)]
pub struct Catalog {
    table: RwLock<Arc<PriceTable>>,
    client: orteam_openrouter::Client,
    last_miss_refresh: Mutex<Option<Instant>>,
}

impl Catalog {
    pub fn new(client: orteam_openrouter::Client) -> Self {
        Catalog {
            table: RwLock::new(Arc::new(PriceTable::default())),
            client,
            last_miss_refresh: Mutex::new(None),
        }
    }

    pub fn snapshot(&self) -> Arc<PriceTable> {
        self.table.read().clone()
    }

    /// Fetches `/models` and `/embeddings/models` (OpenRouter lists embedding models apart)
    /// and swaps the table in. A failed embeddings list leaves embedding models unknown (so
    /// refused, never free) rather than failing the whole refresh.
    pub async fn refresh(&self) -> Result<usize, orteam_openrouter::ClientError> {
        let mut models = self.client.models(&Default::default()).await?.data;
        match self.client.embedding_models().await {
            Ok(list) => {
                let known: std::collections::HashSet<String> =
                    models.iter().map(|m| m.id.clone()).collect();
                models.extend(list.data.into_iter().filter(|m| !known.contains(&m.id)));
            }
            Err(err) => tracing::debug!(%err, "no embedding models listed upstream"),
        }
        let table = Arc::new(PriceTable::from_models(models));
        let n = table.len();
        *self.table.write() = table;
        Ok(n)
    }

    /// The price of `model`, refreshing once if it is unknown.
    pub async fn price(&self, model: &str) -> Option<Arc<ModelPrice>> {
        if let Some(p) = self.table.read().get(model) {
            return Some(p);
        }
        let due = {
            let mut last = self.last_miss_refresh.lock();
            let due = last.is_none_or(|t| t.elapsed() >= MISS_REFRESH_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due && let Err(err) = self.refresh().await {
            tracing::warn!(%err, "catalog refresh after an unknown model failed");
        }
        self.table.read().get(model)
    }
}
