-- orteam ledger, PostgreSQL schema v1. Money is NUMERIC (exact). Instants are TIMESTAMPTZ.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE tiers (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    all_models      BOOLEAN NOT NULL,
    allowed_models  TEXT NOT NULL,
    on_disallowed   TEXT NOT NULL CHECK (on_disallowed IN ('deny', 'downgrade')),
    downgrade_model TEXT,
    -- Per-member rate limits the gateway enforces (NULL: none).
    requests_per_minute BIGINT CHECK (requests_per_minute > 0),
    tokens_per_minute   BIGINT CHECK (tokens_per_minute > 0)
);

CREATE TABLE members (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    team_id      TEXT NOT NULL REFERENCES teams(id),
    tier_id      TEXT NOT NULL REFERENCES tiers(id),
    state        TEXT NOT NULL CHECK (state IN ('active', 'removed')),
    created_at   TIMESTAMPTZ NOT NULL,
    removed_at   TIMESTAMPTZ
);

CREATE TABLE budgets (
    scope        TEXT NOT NULL CHECK (scope IN ('member', 'team', 'org')),
    scope_id     TEXT NOT NULL,
    win          TEXT NOT NULL CHECK (win IN ('daily', 'weekly', 'monthly')),
    limit_amount NUMERIC NOT NULL CHECK (limit_amount >= 0),
    PRIMARY KEY (scope, scope_id, win)
);

CREATE TABLE budget_raises (
    id          TEXT PRIMARY KEY,
    scope       TEXT NOT NULL,
    scope_id    TEXT NOT NULL,
    win         TEXT NOT NULL,
    amount      NUMERIC NOT NULL CHECK (amount >= 0),
    until       TIMESTAMPTZ NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX budget_raises_scope ON budget_raises (scope, scope_id, win);

-- One row per (scope, window instance). `leased` is the sum of every instance's unconsumed lease
-- (budget_leases); instances reserve locally out of their lease. A lease is only ever granted by
-- a conditional UPDATE that keeps spent + leased <= limit.
CREATE TABLE budget_windows (
    id           BIGSERIAL PRIMARY KEY,
    scope        TEXT NOT NULL,
    scope_id     TEXT NOT NULL,
    win          TEXT NOT NULL,
    window_start DATE NOT NULL,
    spent        NUMERIC NOT NULL DEFAULT 0 CHECK (spent >= 0),
    leased       NUMERIC NOT NULL DEFAULT 0 CHECK (leased >= 0),
    last_grant   NUMERIC NOT NULL DEFAULT 0,
    UNIQUE (scope, scope_id, win, window_start)
);

CREATE TABLE budget_leases (
    instance_id TEXT NOT NULL,
    window_id   BIGINT NOT NULL REFERENCES budget_windows(id),
    amount      NUMERIC NOT NULL CHECK (amount >= 0),
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (instance_id, window_id)
);
CREATE INDEX budget_leases_expiry ON budget_leases (expires_at);

CREATE TABLE virtual_keys (
    id           TEXT PRIMARY KEY,
    member_id    TEXT NOT NULL REFERENCES members(id),
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    disabled     BOOLEAN NOT NULL DEFAULT FALSE,
    revoked_at   TIMESTAMPTZ,
    replaces     TEXT,
    last_used_at TIMESTAMPTZ
);

CREATE TABLE upstream_keys (
    id          TEXT PRIMARY KEY,
    member_id   TEXT NOT NULL REFERENCES members(id),
    label       TEXT NOT NULL,
    key_hash    TEXT NOT NULL,
    secret_enc  TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE usage_events (
    seq               BIGSERIAL PRIMARY KEY,
    request_id        TEXT NOT NULL UNIQUE,
    time              TIMESTAMPTZ NOT NULL,
    member_id         TEXT NOT NULL,
    team_id           TEXT NOT NULL,
    org_id            TEXT NOT NULL,
    virtual_key_id    TEXT,
    upstream_key_hash TEXT,
    requested_model   TEXT NOT NULL,
    served_model      TEXT,
    provider          TEXT,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    reasoning_tokens  BIGINT NOT NULL,
    cached_tokens     BIGINT NOT NULL,
    cost              NUMERIC NOT NULL,
    generation_id     TEXT,
    streamed          BOOLEAN NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('ok', 'partial', 'failed', 'provisional')),
    latency_ms        BIGINT NOT NULL,
    title             TEXT
);
CREATE INDEX usage_events_time ON usage_events (time);
CREATE INDEX usage_events_provisional ON usage_events (outcome) WHERE outcome = 'provisional';

CREATE TABLE change_log (
    seq    BIGSERIAL PRIMARY KEY,
    at     TIMESTAMPTZ NOT NULL,
    kind   TEXT NOT NULL,
    entity TEXT NOT NULL
);
