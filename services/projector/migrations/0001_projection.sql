-- The attribution projection. Every table carries the projection's name so a
-- replay (`grim replay`) builds a new one side by side with the live one;
-- `projector.current` says which one readers use.

CREATE TABLE projector.projections (
    name          text PRIMARY KEY,
    rule_version  integer NOT NULL,
    app_id        text NOT NULL,
    from_time     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

CREATE TABLE projector.current (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    name        text NOT NULL REFERENCES projector.projections (name),
    promoted_at timestamptz NOT NULL DEFAULT now()
);

-- One row per tracking token: the click and what the browser reported.
CREATE TABLE projector.tokens (
    projection      text NOT NULL,
    tracking_token  text NOT NULL,
    pool_id         integer,
    pool_slug       text,
    bot_id          bigint,
    bot_username    text,
    pixel_id        text,
    clicked_at      timestamptz,
    is_crawler      boolean NOT NULL DEFAULT false,
    fbclid          text,
    fbc             text,
    fbp             text,
    fbc_origin      text,
    utm_source      text,
    utm_medium      text,
    utm_campaign    text,
    utm_content     text,
    utm_term        text,
    campaign_params jsonb NOT NULL DEFAULT '{}',
    client_ip       text,
    user_agent      text,
    landing_url     text,
    cookie_fbc      text,
    cookie_fbp      text,
    app_version     text NOT NULL,
    rule_version    integer NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, tracking_token)
);

-- One row per stage fact (start, pix_generated, paid, ...) with its attribution.
-- attribution: token | organic | unattributed. decided_at orders re-decisions.
CREATE TABLE projector.facts (
    projection        text NOT NULL,
    source_event_id   text NOT NULL,
    stage             text NOT NULL,
    tracking_token    text,
    attribution       text NOT NULL,
    bot_id            bigint,
    telegram_user_id  bigint,
    payment_id        text,
    occurred_at       timestamptz NOT NULL,
    amount_cents      bigint,
    decided_at        timestamptz NOT NULL,
    app_version       text NOT NULL,
    rule_version      integer NOT NULL,
    PRIMARY KEY (projection, source_event_id)
);
CREATE INDEX facts_token ON projector.facts (projection, tracking_token, stage);

-- One row per payment with its attribution and each stage's time.
CREATE TABLE projector.payments (
    projection        text NOT NULL,
    payment_id        text NOT NULL,
    bot_id            bigint,
    telegram_user_id  bigint,
    tracking_token    text,
    attribution       text NOT NULL,
    product_id        bigint,
    amount_cents      bigint,
    pix_at            timestamptz,
    paid_at           timestamptz,
    refunded_at       timestamptz,
    refunded_cents    bigint,
    expired_at        timestamptz,
    delivered_at      timestamptz,
    decided_at        timestamptz NOT NULL,
    app_version       text NOT NULL,
    rule_version      integer NOT NULL,
    PRIMARY KEY (projection, payment_id)
);
CREATE INDEX payments_token ON projector.payments (projection, tracking_token);

-- Conversions the projection asked for (keyed like the dispatcher's ledger), so a
-- replay can tell which ones are new.
CREATE TABLE projector.conversions (
    projection      text NOT NULL,
    pixel_id        text NOT NULL,
    event_name      text NOT NULL,
    event_id        text NOT NULL,
    tracking_token  text,
    event_time      timestamptz NOT NULL,
    payload         jsonb NOT NULL,
    app_version     text NOT NULL,
    rule_version    integer NOT NULL,
    PRIMARY KEY (projection, pixel_id, event_name, event_id)
);

-- Payments with their click: the base of every sales question.
CREATE VIEW projector.sales AS
SELECT p.projection, p.payment_id, p.bot_id, p.telegram_user_id, p.tracking_token,
       p.attribution, p.product_id, p.amount_cents, p.pix_at, p.paid_at, p.refunded_at,
       p.refunded_cents, p.expired_at, p.delivered_at, p.rule_version, p.app_version,
       t.pool_id, t.pool_slug, t.utm_source, t.utm_campaign, t.utm_content, t.clicked_at,
       p.paid_at - t.clicked_at AS time_to_purchase
FROM projector.payments p
LEFT JOIN projector.tokens t
  ON t.projection = p.projection AND t.tracking_token = p.tracking_token;

-- Funnel per token: click -> start -> pix -> paid.
CREATE VIEW projector.funnel AS
SELECT t.projection, t.tracking_token, t.pool_id, t.pool_slug, t.bot_id, t.utm_campaign,
       t.utm_content, t.clicked_at, t.is_crawler,
       (SELECT min(f.occurred_at) FROM projector.facts f WHERE f.projection = t.projection
          AND f.tracking_token = t.tracking_token AND f.stage = 'start') AS started_at,
       (SELECT min(p.pix_at) FROM projector.payments p WHERE p.projection = t.projection
          AND p.tracking_token = t.tracking_token) AS pix_at,
       (SELECT min(p.paid_at) FROM projector.payments p WHERE p.projection = t.projection
          AND p.tracking_token = t.tracking_token) AS paid_at
FROM projector.tokens t;
