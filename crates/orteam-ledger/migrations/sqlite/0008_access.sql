-- Named admin tokens (stored as SHA-256 only) and the hash-chained audit log.
CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,          -- public id, also the token's visible prefix
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'team_lead', 'viewer', 'member')),
    teams       TEXT NOT NULL DEFAULT '',  -- comma-separated team ids (team_lead)
    max_raise   TEXT,                      -- canonical decimal; NULL: no raises (team_lead)
    token_hash  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER,
    created_by  TEXT NOT NULL
);

-- Each row's hash covers its fields and the previous row's hash (see src/audit.rs), so an
-- edited, deleted or reordered row breaks the chain. Appended in IMMEDIATE transactions.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    before     TEXT,
    after      TEXT,
    source     TEXT,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
