-- Bot gateway state: funnels (seller config), bot users and their /start token
-- history, per-update processing records, and the delivery ledger.

-- One funnel per bot; the document is validated by grim_bot_gateway.funnel.FunnelConfig.
CREATE TABLE bot_gateway.funnels (
    bot_id      bigint PRIMARY KEY REFERENCES config.bots (id) ON DELETE CASCADE,
    config      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER funnels_changed AFTER INSERT OR UPDATE OR DELETE ON bot_gateway.funnels
    FOR EACH STATEMENT EXECUTE FUNCTION config.notify_change();

-- Telegram user and chat ids are 64-bit.
CREATE TABLE bot_gateway.users (
    bot_id            bigint NOT NULL,
    telegram_user_id  bigint NOT NULL,
    chat_id           bigint NOT NULL,
    username          text,
    first_name        text,
    language_code     text,
    tracking_token    text CHECK (tracking_token ~ '^[0-9a-f]{32}$'),
    payload           text,
    first_seen_at     timestamptz NOT NULL DEFAULT now(),
    last_start_at     timestamptz NOT NULL DEFAULT now(),
    blocked_at        timestamptz,
    PRIMARY KEY (bot_id, telegram_user_id)
);

-- Every /start is a touch; the latest one is mirrored in users.tracking_token.
CREATE TABLE bot_gateway.user_tokens (
    id                bigserial PRIMARY KEY,
    bot_id            bigint NOT NULL,
    telegram_user_id  bigint NOT NULL,
    update_id         bigint NOT NULL,
    tracking_token    text,
    payload           text,
    event_id          text NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bot_id, update_id)
);
CREATE INDEX user_tokens_by_user ON bot_gateway.user_tokens (bot_id, telegram_user_id, id);

-- Consumer-side dedup: an update's durable effects commit with its row;
-- replied_at is set once the funnel's replies went out.
CREATE TABLE bot_gateway.processed_updates (
    bot_id        bigint NOT NULL,
    update_id     bigint NOT NULL,
    kind          text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    replied_at    timestamptz,
    PRIMARY KEY (bot_id, update_id)
);

-- Delivery ledger: one row per payment, claimed before sending, marked after Telegram's ok.
CREATE TABLE bot_gateway.deliveries (
    payment_id        text PRIMARY KEY,
    bot_id            bigint NOT NULL,
    telegram_user_id  bigint NOT NULL,
    event_id          text NOT NULL,
    delivery_url      text,
    attempts          integer NOT NULL DEFAULT 0,
    claimed_at        timestamptz,
    sent_at           timestamptz,
    failed_reason     text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
