-- Requests in flight: recorded before a request is forwarded upstream, with the generation id
-- once upstream's headers reveal it, deleted in the transaction that records its settled event
-- (or when it is released unanswered). A row left by an instance that died is resolved by the
-- next instance to start or to reclaim its leases: charged provisionally at its worst case
-- (`record`: the provisional usage event as JSON) before that instance's leases return to the
-- budgets, so money upstream may have billed is never granted again.
CREATE TABLE inflight_requests (
    request_id    TEXT PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    record        TEXT NOT NULL,
    generation_id TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX inflight_requests_instance ON inflight_requests (instance_id);

-- Serving instances and until when their heartbeat vouches for them (renewed after their
-- leases, so an instance never looks alive longer than its leases do).
CREATE TABLE ledger_instances (
    instance_id TEXT PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL
);
