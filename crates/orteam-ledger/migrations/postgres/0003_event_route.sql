-- The gateway API route of each usage event (chat completions, Anthropic Messages, OpenAI
-- Responses, embeddings, legacy completions). Events recorded before routes were recorded were
-- all chat completions, so existing rows take the default (a constant default: no rewrite).
-- The CHECK is spelled as comparisons like SQLite's (0003 there says why).
ALTER TABLE usage_events ADD COLUMN route TEXT NOT NULL DEFAULT 'chat'
    CONSTRAINT usage_events_route_check
    CHECK (route = 'chat' OR route = 'messages' OR route = 'responses' OR route = 'embeddings' OR route = 'completions');
