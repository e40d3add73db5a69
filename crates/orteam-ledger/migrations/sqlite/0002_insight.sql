-- Spend insight: the alert outbox and the queue of cost corrections.

-- One row per (alert, webhook URL). The alert id names the event it reports (e.g.
-- `budget:member:alice:daily:2026-05-04:80`), so enqueueing the same alert twice is a no-op:
-- an alert is recorded once per threshold per window, whichever process notices it first.
CREATE TABLE alert_outbox (
    alert_id        TEXT NOT NULL,
    url             TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- A sender that claimed the row; others skip it until this instant passes.
    claimed_until   INTEGER,
    delivered_at    INTEGER,
    -- Gave up after too many attempts.
    dead            INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    PRIMARY KEY (alert_id, url)
);
CREATE INDEX alert_outbox_pending ON alert_outbox (next_attempt_at) WHERE delivered_at IS NULL AND dead = 0;

-- Exact costs found by reconciliation, waiting for the serving process (which owns the budget
-- counters) to apply them with `correct_cost`.
CREATE TABLE cost_corrections (
    request_id    TEXT PRIMARY KEY,
    exact_cost    TEXT NOT NULL,
    generation_id TEXT,
    requested_at  INTEGER NOT NULL,
    applied_at    INTEGER,
    error         TEXT
);
CREATE INDEX cost_corrections_pending ON cost_corrections (requested_at) WHERE applied_at IS NULL;
