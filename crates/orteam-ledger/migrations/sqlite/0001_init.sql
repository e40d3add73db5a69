-- orteam ledger, SQLite schema v1.
-- Money is TEXT holding the canonical decimal string (exact; summed in Rust with Money).
-- Instants are INTEGER microseconds since the Unix epoch (UTC); window starts are 'YYYY-MM-DD'.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE tiers (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    all_models      INTEGER NOT NULL,
    allowed_models  TEXT NOT NULL,          -- JSON array of model ids
    on_disallowed   TEXT NOT NULL CHECK (on_disallowed IN ('deny', 'downgrade')),
    downgrade_model TEXT,
    -- Per-member rate limits the gateway enforces (NULL: none).
    requests_per_minute INTEGER CHECK (requests_per_minute > 0),
    tokens_per_minute   INTEGER CHECK (tokens_per_minute > 0)
);

CREATE TABLE members (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    team_id      TEXT NOT NULL REFERENCES teams(id),
    tier_id      TEXT NOT NULL REFERENCES tiers(id),
    state        TEXT NOT NULL CHECK (state IN ('active', 'removed')),
    created_at   INTEGER NOT NULL,
    removed_at   INTEGER
);

CREATE TABLE budgets (
    scope        TEXT NOT NULL CHECK (scope IN ('member', 'team', 'org')),
    scope_id     TEXT NOT NULL,
    win          TEXT NOT NULL CHECK (win IN ('daily', 'weekly', 'monthly')),
    limit_amount TEXT NOT NULL,
    PRIMARY KEY (scope, scope_id, win)
);

CREATE TABLE budget_raises (
    id          TEXT PRIMARY KEY,
    scope       TEXT NOT NULL,
    scope_id    TEXT NOT NULL,
    win         TEXT NOT NULL,
    amount      TEXT NOT NULL,
    until       INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Spend per (scope, window instance), for every scope and window whether or not a budget is set,
-- so that a budget added mid-window starts from the true spend.
CREATE TABLE budget_windows (
    scope        TEXT NOT NULL,
    scope_id     TEXT NOT NULL,
    win          TEXT NOT NULL,
    window_start TEXT NOT NULL,
    spent        TEXT NOT NULL,
    PRIMARY KEY (scope, scope_id, win, window_start)
) WITHOUT ROWID;

CREATE TABLE virtual_keys (
    id           TEXT PRIMARY KEY,           -- the 12-char public id
    member_id    TEXT NOT NULL REFERENCES members(id),
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL,              -- hex SHA-256 of the full key; the key itself is never stored
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    disabled     INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER,
    replaces     TEXT,
    last_used_at INTEGER
);

CREATE TABLE upstream_keys (
    id          TEXT PRIMARY KEY,
    member_id   TEXT NOT NULL REFERENCES members(id),
    label       TEXT NOT NULL,
    key_hash    TEXT NOT NULL,
    secret_enc  TEXT,                         -- AES-256-GCM, only when the gateway must hold it
    created_at  INTEGER NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE usage_events (
    seq               INTEGER PRIMARY KEY,
    request_id        TEXT NOT NULL UNIQUE,
    time              INTEGER NOT NULL,
    member_id         TEXT NOT NULL,
    team_id           TEXT NOT NULL,
    org_id            TEXT NOT NULL,
    virtual_key_id    TEXT,
    upstream_key_hash TEXT,
    requested_model   TEXT NOT NULL,
    served_model      TEXT,
    provider          TEXT,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens  INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    cost              TEXT NOT NULL,
    generation_id     TEXT,
    streamed          INTEGER NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('ok', 'partial', 'failed', 'provisional')),
    latency_ms        INTEGER NOT NULL,
    title             TEXT
);
CREATE INDEX usage_events_time ON usage_events (time);
CREATE INDEX usage_events_provisional ON usage_events (outcome) WHERE outcome = 'provisional';

-- Every directory change appends a row; other processes poll the sequence.
CREATE TABLE change_log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    entity TEXT NOT NULL
);
