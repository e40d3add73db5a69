-- Issue 17: a tier's policy for OpenRouter's routing fields (JSON of `RoutingPolicy`; `{}`
-- takes every default), and the flag on a usage event whose served model was outside the
-- member's tier (a policy violation: charged, since upstream billed it, and shown as such).
ALTER TABLE tiers ADD COLUMN routing TEXT NOT NULL DEFAULT '{}';
ALTER TABLE usage_events ADD COLUMN served_outside_tier INTEGER NOT NULL DEFAULT 0;
CREATE INDEX usage_events_outside_tier ON usage_events (time) WHERE served_outside_tier = 1;
