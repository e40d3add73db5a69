-- The shared OpenRouter keys gateways use (OPENROUTER_API_KEY), by OpenRouter's hash (SHA-256 of
-- the secret) and masked label: registered by `orteam serve` at start and by `team apply`, so
-- the team's plan never lists them as strays and `apply --prune` never deletes them.
CREATE TABLE gateway_keys (
    key_hash      TEXT PRIMARY KEY,
    label         TEXT NOT NULL,
    registered_at INTEGER NOT NULL
);
