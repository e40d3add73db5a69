-- Reconciliation repairs (issue 18): an event reconciliation corrected or inserted carries the
-- evidence it rests on; a queued correction may carry the event to insert first (a generation
-- OpenRouter billed that the ledger never recorded); each reconcile run's result is kept for the
-- dashboard and the alerts.
ALTER TABLE usage_events ADD COLUMN reconciled_at INTEGER;
ALTER TABLE usage_events ADD COLUMN reconciled_evidence TEXT;
ALTER TABLE cost_corrections ADD COLUMN evidence TEXT;
ALTER TABLE cost_corrections ADD COLUMN new_event TEXT;
CREATE TABLE reconcile_runs (
    id          INTEGER PRIMARY KEY,
    finished_at INTEGER NOT NULL,
    source      TEXT NOT NULL,
    result      TEXT NOT NULL
);
