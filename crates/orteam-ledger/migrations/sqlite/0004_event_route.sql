-- The gateway API route of each usage event (chat completions, Anthropic Messages, OpenAI
-- Responses, embeddings, legacy completions). Events recorded before routes were recorded were
-- all chat completions, so existing rows take the default.
-- The CHECK is spelled as comparisons, not `IN (…)`: see 0003 (an `IN` list made SQLite build
-- and drop an ephemeral index for every inserted event). ADD COLUMN checks existing rows
-- against it; the default passes.
ALTER TABLE usage_events ADD COLUMN route TEXT NOT NULL DEFAULT 'chat'
    CHECK (route = 'chat' OR route = 'messages' OR route = 'responses' OR route = 'embeddings' OR route = 'completions');
