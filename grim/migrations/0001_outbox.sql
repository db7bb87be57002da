-- Transactional outbox: a fact is committed here in the same transaction as the
-- state change that produced it; a relay publishes it to Kafka and only then
-- marks it published. Each service relays its own rows (owner).

CREATE TABLE outbox.events (
    id            bigserial PRIMARY KEY,
    owner         text NOT NULL,
    topic         text NOT NULL,
    key           bytea,
    value         bytea NOT NULL,
    event_id      text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text
);

CREATE INDEX events_pending ON outbox.events (owner, id) WHERE published_at IS NULL;
CREATE INDEX events_published ON outbox.events (published_at) WHERE published_at IS NOT NULL;
