-- A token's name is unique among live (not revoked) tokens only, so a name can be used again
-- after a revoke (a token removed from the team file and declared again later). SQLite cannot
-- drop a UNIQUE constraint: the table is rebuilt. `file_org` marks tokens a team file declares
-- (`[access.tokens.*]`) with the file's org: the only ones that org's `team apply` changes or
-- revokes (NULL: made by hand, never touched by apply).
CREATE TABLE admin_tokens_new (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'team_lead', 'viewer', 'member')),
    teams           TEXT NOT NULL DEFAULT '',
    max_raise       TEXT,
    token_hash      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER,
    revoked_at      INTEGER,
    created_by      TEXT NOT NULL,
    file_org        TEXT
);
INSERT INTO admin_tokens_new (id, name, role, teams, max_raise, token_hash, created_at,
                              expires_at, revoked_at, created_by, file_org)
    SELECT id, name, role, teams, max_raise, token_hash, created_at, expires_at, revoked_at,
           created_by, NULL
    FROM admin_tokens;
DROP TABLE admin_tokens;
ALTER TABLE admin_tokens_new RENAME TO admin_tokens;
CREATE UNIQUE INDEX admin_tokens_live_name ON admin_tokens (name) WHERE revoked_at IS NULL;
