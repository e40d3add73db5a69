-- Spend insight: the alert outbox and the queue of cost corrections.

-- One row per (alert, webhook URL). The alert id names the event it reports (e.g.
-- `budget:member:alice:daily:2026-05-04:80`), so enqueueing the same alert twice is a no-op:
-- an alert is recorded once per threshold per window, whichever instance notices it first.
CREATE TABLE alert_outbox (
    alert_id        TEXT NOT NULL,
    url             TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    -- A sender that claimed the row; others skip it until this instant passes.
    claimed_until   TIMESTAMPTZ,
    delivered_at    TIMESTAMPTZ,
    -- Gave up after too many attempts.
    dead            BOOLEAN NOT NULL DEFAULT FALSE,
    last_error      TEXT,
    PRIMARY KEY (alert_id, url)
);
CREATE INDEX alert_outbox_pending ON alert_outbox (next_attempt_at) WHERE delivered_at IS NULL AND NOT dead;

-- Exact costs found by reconciliation, waiting for a serving instance to apply them with
-- `correct_cost` (which moves the budget counters by the difference).
CREATE TABLE cost_corrections (
    request_id    TEXT PRIMARY KEY,
    exact_cost    NUMERIC NOT NULL CHECK (exact_cost >= 0),
    generation_id TEXT,
    requested_at  TIMESTAMPTZ NOT NULL,
    applied_at    TIMESTAMPTZ,
    error         TEXT
);
CREATE INDEX cost_corrections_pending ON cost_corrections (requested_at) WHERE applied_at IS NULL;
