-- Named admin tokens (stored as SHA-256 only) and the hash-chained audit log.
CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'team_lead', 'viewer', 'member')),
    teams       TEXT NOT NULL DEFAULT '',
    max_raise   NUMERIC,
    token_hash  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ,
    created_by  TEXT NOT NULL
);

-- Each row's hash covers its fields and the previous row's hash (see src/audit.rs). Writers
-- from every gateway instance append under a table lock, so there is one chain. before/after
-- are TEXT (not jsonb) so the hashed text is kept byte for byte.
CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    before     TEXT,
    after      TEXT,
    source     TEXT,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
