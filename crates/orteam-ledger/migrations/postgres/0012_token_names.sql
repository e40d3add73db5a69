-- A token's name is unique among live (not revoked) tokens only, so a name can be used again
-- after a revoke (a token removed from the team file and declared again later).
-- `file_org` marks tokens a team file declares (`[access.tokens.*]`) with the file's org: the
-- only ones that org's `team apply` changes or revokes (NULL: made by hand, never touched).
ALTER TABLE admin_tokens DROP CONSTRAINT admin_tokens_name_key;
ALTER TABLE admin_tokens ADD COLUMN file_org TEXT;
CREATE UNIQUE INDEX admin_tokens_live_name ON admin_tokens (name) WHERE revoked_at IS NULL;
