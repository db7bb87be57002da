-- Seller configuration shared by the services: pixels, bots, pools and their bots.
-- Secrets are stored encrypted (grim.crypto.SecretBox, key GRIM_SECRET_KEY).

CREATE TABLE config.pixels (
    pixel_id          text PRIMARY KEY CHECK (pixel_id ~ '^[0-9]{1,32}$'),
    name              text NOT NULL DEFAULT '',
    access_token_enc  bytea,
    enabled_events    text[] NOT NULL
                      DEFAULT ARRAY['PageView', 'ViewContent', 'InitiateCheckout', 'Purchase'],
    test_event_code   text,
    -- action_source for events that happen in the bot or at the gateway; the
    -- bridge-page PageView is always 'website'.
    action_source     text NOT NULL DEFAULT 'website'
                      CHECK (action_source IN ('website', 'chat', 'system_generated', 'other')),
    flagged_reason    text,
    flagged_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- id is Telegram's own bot id (the number before ':' in the token).
CREATE TABLE config.bots (
    id                  bigint PRIMARY KEY,
    username            text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z][A-Za-z0-9_]{3,31}$'),
    token_enc           bytea NOT NULL,
    webhook_secret_enc  bytea NOT NULL,
    enabled             boolean NOT NULL DEFAULT true,
    healthy             boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE config.pools (
    id          bigserial PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text NOT NULL DEFAULT '',
    enabled     boolean NOT NULL DEFAULT true,
    pixel_id    text REFERENCES config.pixels (pixel_id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE config.pool_bots (
    pool_id  bigint NOT NULL REFERENCES config.pools (id) ON DELETE CASCADE,
    bot_id   bigint NOT NULL REFERENCES config.bots (id) ON DELETE CASCADE,
    weight   integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000),
    enabled  boolean NOT NULL DEFAULT true,
    PRIMARY KEY (pool_id, bot_id)
);

-- Services cache configuration; a NOTIFY lets them drop the cache at once
-- instead of waiting for the cache to expire.
CREATE FUNCTION config.notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('grim_config', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER pixels_changed AFTER INSERT OR UPDATE OR DELETE ON config.pixels
    FOR EACH STATEMENT EXECUTE FUNCTION config.notify_change();
CREATE TRIGGER bots_changed AFTER INSERT OR UPDATE OR DELETE ON config.bots
    FOR EACH STATEMENT EXECUTE FUNCTION config.notify_change();
CREATE TRIGGER pools_changed AFTER INSERT OR UPDATE OR DELETE ON config.pools
    FOR EACH STATEMENT EXECUTE FUNCTION config.notify_change();
CREATE TRIGGER pool_bots_changed AFTER INSERT OR UPDATE OR DELETE ON config.pool_bots
    FOR EACH STATEMENT EXECUTE FUNCTION config.notify_change();
