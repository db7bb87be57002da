-- Payments: products, gateway accounts, PIX charges, the facts of each charge's
-- state machine, and delivery tokens. Facts and their outbox rows commit together.

CREATE TABLE payments.gateway_accounts (
    id                  bigserial PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    gateway             text NOT NULL CHECK (gateway IN ('mercadopago', 'pushinpay', 'woovi', 'sandbox')),
    credentials_enc     bytea NOT NULL,
    webhook_secret_enc  bytea,
    pix_key             text,
    enabled             boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payments.products (
    id                  bigserial PRIMARY KEY,
    name                text NOT NULL,
    price_cents         integer NOT NULL CHECK (price_cents > 0),
    currency            text NOT NULL DEFAULT 'BRL' CHECK (currency = 'BRL'),
    delivery_content    text NOT NULL DEFAULT '',
    gateway_account_id  bigint NOT NULL REFERENCES payments.gateway_accounts (id),
    expires_in_seconds  integer NOT NULL DEFAULT 1800 CHECK (expires_in_seconds BETWEEN 60 AND 604800),
    enabled             boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payments.charges (
    id                  text PRIMARY KEY,
    idempotency_key     text NOT NULL UNIQUE,
    request_hash        text NOT NULL,
    product_id          bigint NOT NULL REFERENCES payments.products (id),
    product_name        text NOT NULL,
    amount_cents        integer NOT NULL CHECK (amount_cents > 0),
    currency            text NOT NULL DEFAULT 'BRL',
    bot_id              bigint NOT NULL,
    telegram_user_id    bigint NOT NULL,
    chat_id             bigint NOT NULL,
    tracking_token      text,
    account_id          bigint NOT NULL REFERENCES payments.gateway_accounts (id),
    gateway             text NOT NULL,
    gateway_charge_id   text,
    pix_copy_paste      text,
    qr_png_base64       text,
    expires_at          timestamptz NOT NULL,
    status              text NOT NULL DEFAULT 'created',
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Webhooks find their charge by the gateway's id, whatever its case.
CREATE UNIQUE INDEX charges_gateway_id ON payments.charges (account_id, lower(gateway_charge_id));

CREATE INDEX charges_pending_expiry ON payments.charges (expires_at) WHERE status = 'pending';

-- One row per fact of a charge: a duplicate webhook cannot record a fact twice.
CREATE TABLE payments.charge_facts (
    charge_id           text NOT NULL REFERENCES payments.charges (id),
    kind                text NOT NULL,
    gateway_event_id    text,
    occurred_at         timestamptz NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (charge_id, kind)
);

-- Only a SHA-256 of the token is stored: a database leak does not open deliveries.
CREATE TABLE payments.delivery_tokens (
    token_hash          bytea PRIMARY KEY,
    charge_id           text NOT NULL UNIQUE REFERENCES payments.charges (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    revoked_at          timestamptz,
    first_opened_at     timestamptz,
    open_count          integer NOT NULL DEFAULT 0
);
