-- Refused requests, counted per minute × member × route × model × reason × detail (the ledger's
-- `refusals.rs` says why this bounds the table). Empty text stands for "unknown" so the key can
-- be the primary key; the writer adds to `count` (`ON CONFLICT … DO UPDATE`).
CREATE TABLE refusals (
    minute    INTEGER NOT NULL, -- microseconds since the epoch, like usage_events.time
    member_id TEXT NOT NULL,
    route     TEXT NOT NULL,
    model     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    count     INTEGER NOT NULL CHECK (count > 0),
    PRIMARY KEY (minute, member_id, route, model, reason, detail)
) WITHOUT ROWID;
CREATE INDEX refusals_member_minute ON refusals (member_id, minute);
