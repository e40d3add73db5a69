-- Each usage event's latency in microseconds (a gateway hop is often well under a millisecond,
-- which `latency_ms` shows as 0). Events recorded before keep 0 here and their `latency_ms`.
ALTER TABLE usage_events ADD COLUMN latency_us INTEGER NOT NULL DEFAULT 0;
