-- A token's name is unique among live (not revoked) tokens only, so a name can be used again
-- after a revoke (a token removed from the team file and declared again later).
-- `managed_by_file` marks tokens the team file declares (`[access.tokens.*]`), the only ones
-- `team apply` changes or revokes.
ALTER TABLE admin_tokens DROP CONSTRAINT admin_tokens_name_key;
ALTER TABLE admin_tokens ADD COLUMN managed_by_file BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX admin_tokens_live_name ON admin_tokens (name) WHERE revoked_at IS NULL;
