-- Refused requests, counted per minute × member × route × model × reason × detail (the ledger's
-- `refusals.rs` says why this bounds the table). Empty text stands for "unknown" so the key can
-- be the primary key; the writer adds to `count` (`ON CONFLICT … DO UPDATE`).
CREATE TABLE refusals (
    minute    TIMESTAMPTZ NOT NULL,
    member_id TEXT NOT NULL,
    route     TEXT NOT NULL,
    model     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    count     BIGINT NOT NULL CHECK (count > 0),
    PRIMARY KEY (minute, member_id, route, model, reason, detail)
);
CREATE INDEX refusals_member_minute ON refusals (member_id, minute);
