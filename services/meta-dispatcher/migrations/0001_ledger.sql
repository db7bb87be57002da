-- What Meta accepted. The projector's replay reads this table by these exact
-- column names to know which conversions were already delivered: keep them.
CREATE TABLE dispatcher.ledger (
    pixel_id          text NOT NULL,
    event_name        text NOT NULL,
    event_id          text NOT NULL,
    events_received   integer NOT NULL,
    fbtrace_id        text,
    accepted_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pixel_id, event_name, event_id)
);

-- A mirror of the capi-dlq topic that the operator CLI can list and mark as
-- retried; the topic stays the record of what was parked and why.
CREATE TABLE dispatcher.dead_letters (
    pixel_id      text NOT NULL,
    event_name    text NOT NULL,
    event_id      text NOT NULL,
    reason        text NOT NULL,
    kind          text NOT NULL,
    code          integer,
    subcode       integer,
    fbtrace_id    text,
    conversion    jsonb NOT NULL,
    parked_at     timestamptz NOT NULL DEFAULT now(),
    retried_at    timestamptz,
    PRIMARY KEY (pixel_id, event_name, event_id)
);

CREATE INDEX dead_letters_pending ON dispatcher.dead_letters (parked_at) WHERE retried_at IS NULL;
