"""The Grafana dashboards of Grim, as data: three dashboards, each panel with an explicit
datasource (Prometheus, or the attribution projection in PostgreSQL) and a description
that says which.

`python deploy/grafana/generate_dashboards.py` writes them to deploy/grafana/dashboards/;
a unit test fails when the committed JSON drifts from this file, and
tests/integration/test_observability.py runs every query against a real Prometheus and
the projection.
"""

from __future__ import annotations

from dataclasses import dataclass

PROMETHEUS = {"type": "prometheus", "uid": "grim-prometheus"}
PROJECTION = {"type": "grafana-postgresql-datasource", "uid": "grim-projection"}

# Readers follow the promoted projection (`grim replay --promote`), 'main' before any.
CURRENT = "COALESCE((SELECT name FROM projector.current), 'main')"


@dataclass(frozen=True)
class Panel:
    title: str
    query: str
    explain: str
    kind: str = "timeseries"  # timeseries | stat | table | barchart
    unit: str = "short"
    sql: bool = False
    legend: str = ""

    @property
    def source(self) -> str:
        return "PostgreSQL projection (projector.*)" if self.sql else "Prometheus"


def prom(title: str, expr: str, explain: str, **kw: str) -> Panel:
    return Panel(title, expr, explain, **kw)


def sql(title: str, query: str, explain: str, **kw: str) -> Panel:
    return Panel(title, query, explain, sql=True, **kw)


FUNNEL = [
    prom("Clicks recorded /s", "sum by (kind) (rate(grim_redirect_clicks_recorded_total[5m]))",
         "Clicks made durable by the redirect, visitors vs flagged crawlers.", unit="reqps",
         legend="{{kind}}"),
    prom("/go outcomes /s", "sum by (outcome) (rate(grim_redirect_requests_total[5m]))",
         "Answers of /go/{slug}: bridge page, plain redirect, unknown or disabled pool, no bot.",
         unit="reqps", legend="{{outcome}}"),
    prom("Clicks by pool (1h)", "sum by (pool_id) (increase(grim_redirect_bot_selections_total[1h]))",
         "Counted clicks per pool over the last hour (crawlers excluded).", kind="barchart",
         legend="pool {{pool_id}}"),
    prom("Starts (1h)", "sum by (attributed) (increase(grim_bot_gateway_starts_total[1h]))",
         "/start commands bound by the bot gateway, with or without a tracking token.",
         kind="stat", legend="attributed={{attributed}}"),
    prom("PIX charges (1h)",
         "sum by (gateway, outcome) (increase(grim_payments_charges_created_total[1h]))",
         "Charge requests to payments by gateway and outcome.", kind="stat",
         legend="{{gateway}} {{outcome}}"),
    prom("Payment facts (1h)",
         "sum by (fact, state) (increase(grim_payments_state_transitions_total[1h]))",
         "Facts recorded on charges (pix_generated, paid, refunded, expired).", kind="stat",
         legend="{{fact}} -> {{state}}"),
    prom("Attribution decisions /s", "sum by (kind) (rate(grim_projector_attributions_total[5m]))",
         "How the projector attributes stage facts: to a token, organic, unattributed.",
         unit="ops", legend="{{kind}}"),
    sql("Funnel by pool",
        "SELECT coalesce(pool_slug, '(none)') AS pool, count(*) AS clicks,"
        " count(started_at) AS starts, count(pix_at) AS pix, count(paid_at) AS paid,"
        " round(100.0 * count(started_at) / nullif(count(*), 0), 1) AS start_rate_pct,"
        " round(100.0 * count(paid_at) / nullif(count(started_at), 0), 1) AS paid_per_start_pct"
        f" FROM projector.funnel WHERE projection = {CURRENT} AND NOT is_crawler"
        " AND $__timeFilter(clicked_at) GROUP BY 1 ORDER BY clicks DESC",
        "Click -> start -> PIX -> paid per pool, for clicks in the time range.", kind="table"),
    sql("Funnel by campaign",
        "SELECT coalesce(utm_campaign, '(none)') AS campaign, count(*) AS clicks,"
        " count(started_at) AS starts, count(pix_at) AS pix, count(paid_at) AS paid,"
        " round(100.0 * count(paid_at) / nullif(count(*), 0), 2) AS paid_per_click_pct"
        f" FROM projector.funnel WHERE projection = {CURRENT} AND NOT is_crawler"
        " AND $__timeFilter(clicked_at) GROUP BY 1 ORDER BY clicks DESC",
        "Click -> start -> PIX -> paid per utm_campaign, for clicks in the time range.",
        kind="table"),
    sql("Revenue by pool and campaign",
        "SELECT coalesce(pool_slug, '(organic)') AS pool, coalesce(utm_campaign, '(none)')"
        " AS campaign, count(*) AS sales,"
        " sum(amount_cents - coalesce(refunded_cents, 0)) / 100.0 AS revenue_brl"
        f" FROM projector.sales WHERE projection = {CURRENT} AND paid_at IS NOT NULL"
        " AND $__timeFilter(paid_at) GROUP BY 1, 2 ORDER BY revenue_brl DESC",
        "Paid sales net of refunds, by the pool and campaign of their click.", kind="table",
        unit="currencyBRL"),
    sql("Revenue per hour",
        "SELECT date_trunc('hour', paid_at) AS time,"
        " sum(amount_cents) / 100.0 AS revenue_brl"
        f" FROM projector.payments WHERE projection = {CURRENT} AND paid_at IS NOT NULL"
        " AND $__timeFilter(paid_at) GROUP BY 1 ORDER BY 1",
        "Gross paid revenue per hour.", unit="currencyBRL"),
    sql("Sales by attribution",
        "SELECT attribution, count(*) AS sales, sum(amount_cents) / 100.0 AS revenue_brl"
        f" FROM projector.payments WHERE projection = {CURRENT} AND paid_at IS NOT NULL"
        " AND $__timeFilter(paid_at) GROUP BY 1 ORDER BY 2 DESC",
        "Paid sales attributed to a click (token), organic (no token), or unattributed.",
        kind="table"),
]

CAPI = [
    prom("Events sent /s",
         "sum by (pixel_id, event_name) (rate(grim_dispatcher_events_sent_total[5m]))",
         "Events put in a Graph request, every attempt counted.", unit="ops",
         legend="{{pixel_id}} {{event_name}}"),
    prom("Events accepted /s",
         "sum by (pixel_id, event_name) (rate(grim_dispatcher_events_accepted_total[5m]))",
         "Events Meta accepted (events_received) and the ledger recorded.", unit="ops",
         legend="{{pixel_id}} {{event_name}}"),
    prom("Events failed (1h)",
         "sum by (pixel_id, event_name, kind) (increase(grim_dispatcher_events_failed_total[1h]))",
         "Events parked in the DLQ, by reason kind (invalid_events, invalid_token, ...).",
         kind="table", legend="{{pixel_id}} {{event_name}} {{kind}}"),
    prom("Graph requests by outcome /s",
         "sum by (outcome) (rate(grim_dispatcher_graph_requests_total[5m]))",
         "Graph API answers classified: accepted, transient, invalid_events, invalid_token.",
         unit="reqps", legend="{{outcome}}"),
    prom("Graph latency p95",
         "histogram_quantile(0.95, sum by (le, outcome)"
         " (rate(grim_dispatcher_graph_request_duration_seconds_bucket[5m])))",
         "95th percentile of Graph API request latency.", unit="s", legend="{{outcome}}"),
    prom("Click-to-accepted lag p95",
         "histogram_quantile(0.95, sum by (le) (rate(grim_dispatcher_ledger_lag_seconds_bucket[15m])))",
         "From the conversion being requested to Meta's acceptance being in the ledger.",
         unit="s"),
    prom("Retries /s", "sum by (where) (rate(grim_dispatcher_retries_total[5m]))",
         "Retries in process, or parked on the delayed retry topic.", unit="ops",
         legend="{{where}}"),
    prom("Dedup hits /s", "sum by (source) (rate(grim_dispatcher_deduplicated_total[5m]))",
         "Events skipped because the ledger already had them or the batch repeated them.",
         unit="ops", legend="{{source}}"),
    prom("DLQ size", "max(grim_dispatcher_dlq_size_events)",
         "Dead-lettered conversions not yet retried (`grim dlq list`).", kind="stat"),
    prom("Oldest unsent conversion", "max(grim_dispatcher_oldest_unsent_age_seconds)",
         "Age of the oldest conversion fetched but neither accepted nor parked.", kind="stat",
         unit="s"),
    prom("Batch size p50",
         "histogram_quantile(0.5, sum by (le) (rate(grim_dispatcher_batch_size_events_bucket[15m])))",
         "Median events per Graph request (up to 1000 per pixel).", unit="short"),
    prom("Conversions requested /s",
         "sum by (event_name) (rate(grim_projector_conversions_total[5m]))",
         "Conversions the projector emitted to the conversions topic.", unit="ops",
         legend="{{event_name}}"),
    sql("Conversions requested by pixel",
        "SELECT pixel_id, event_name, count(*) AS events, max(event_time) AS latest"
        f" FROM projector.conversions WHERE projection = {CURRENT}"
        " AND $__timeFilter(event_time) GROUP BY 1, 2 ORDER BY 1, 2",
        "What the projection asked the dispatcher to send, per pixel and event.", kind="table"),
]

PIPELINE = [
    prom("Services up", 'up{job="grim"}', "1 when Prometheus can scrape the service.",
         kind="stat", legend="{{service}} {{instance}}"),
    prom("HTTP requests /s",
         'sum by (service, status) (rate({__name__=~"grim_.+_http_requests_total"}[5m]))',
         "Requests per service and status code.", unit="reqps", legend="{{service}} {{status}}"),
    prom("HTTP latency p95",
         "histogram_quantile(0.95, sum by (service, le)"
         ' (rate({__name__=~"grim_.+_http_request_duration_seconds_bucket"}[5m])))',
         "95th percentile of request latency per service.", unit="s", legend="{{service}}"),
    prom("/go latency p99",
         "histogram_quantile(0.99, sum by (le) (rate(grim_redirect_click_duration_seconds_bucket[5m])))",
         "Time to answer /go, click capture and publication included.", unit="s"),
    prom("Consumer lag", "sum by (group, topic) (grim_kafka_consumer_lag_records)",
         "Records between committed position and partition end, per consumer group.",
         legend="{{group}} {{topic}}"),
    prom("Projector lag (replay progress)",
         "sum by (instance, topic) (grim_projector_consumer_lag_records)",
         "Records the projector still has to read; a replay worker shows here as its own"
         " instance, draining to 0 when the replay caught up.", legend="{{instance}} {{topic}}"),
    prom("Outbox backlog", "sum by (owner) (grim_outbox_backlog_records)",
         "Outbox rows committed but not yet published to Kafka.", legend="{{owner}}"),
    prom("Outbox oldest pending", "max by (owner) (grim_outbox_oldest_pending_seconds)",
         "Age of the oldest unpublished outbox row.", unit="s", legend="{{owner}}"),
    prom("Redirect spool backlog", "max by (instance) (grim_redirect_spool_backlog_records)",
         "Clicks in a redirect's local spool (Kafka and PostgreSQL were unreachable).",
         legend="{{instance}}"),
    prom("Kafka publishes /s", "sum by (topic) (rate(grim_kafka_published_total[5m]))",
         "Events acknowledged by Kafka (acks=all).", unit="ops", legend="{{topic}}"),
    prom("Kafka publish errors /s",
         "sum by (topic) (rate(grim_kafka_publish_errors_total[5m]))",
         "Publishes Kafka did not acknowledge.", unit="ops", legend="{{topic}}"),
    prom("Records consumed /s", "sum by (group, topic) (rate(grim_kafka_consumed_total[5m]))",
         "Records handled and committed per consumer group.", unit="ops",
         legend="{{group}} {{topic}}"),
    prom("Projector facts /s", "sum by (stage) (rate(grim_projector_events_total[5m]))",
         "Stage facts the projector processed.", unit="ops", legend="{{stage}}"),
    prom("Dead-lettered records (1h)",
         "sum by (group, topic) (increase(grim_kafka_malformed_records_total[1h]))"
         ' or label_replace(sum by (topic) (increase(grim_projector_malformed_events_total[1h])),'
         ' "group", "projector", "", "")',
         "Records no consumer could decode, sent to the dead-letters topic.",
         legend="{{group}} {{topic}}"),
    prom("Telegram API calls /s",
         "sum by (method, outcome) (rate(grim_bot_gateway_telegram_calls_total[5m]))",
         "Bot API calls of the bot gateway.", unit="ops", legend="{{method}} {{outcome}}"),
    prom("Gateway call latency p95",
         "histogram_quantile(0.95, sum by (le, gateway)"
         " (rate(grim_payments_gateway_call_duration_seconds_bucket[5m])))",
         "Latency of PIX gateway calls.", unit="s", legend="{{gateway}}"),
    prom("Webhooks /s",
         'label_replace(sum by (outcome) (rate(grim_bot_gateway_webhook_requests_total[5m])),'
         ' "source", "telegram", "", "")'
         ' or label_replace(sum by (gateway, outcome) (rate(grim_payments_webhooks_total[5m])),'
         ' "source", "$1", "gateway", "(.*)")',
         "Telegram and gateway webhooks by outcome (forbidden/forged = refused).", unit="reqps",
         legend="{{source}} {{outcome}}"),
    sql("Projections and replays",
        "SELECT p.name, p.rule_version, p.created_at, p.finished_at,"
        " p.name = c.name AS is_current,"
        " (SELECT count(*) FROM projector.facts f WHERE f.projection = p.name) AS facts"
        " FROM projector.projections p LEFT JOIN projector.current c ON true"
        " ORDER BY p.created_at DESC",
        "Live projection and replays (`grim replay`): facts projected so far, finished or not.",
        kind="table"),
]

DASHBOARDS = {
    "grim-funnel": ("Grim / Funnel", FUNNEL),
    "grim-capi": ("Grim / CAPI delivery", CAPI),
    "grim-pipeline": ("Grim / Pipeline health", PIPELINE),
}


def _target(panel: Panel) -> dict[str, object]:
    if panel.sql:
        fmt = "time_series" if panel.kind == "timeseries" else "table"
        return {"refId": "A", "datasource": PROJECTION, "editorMode": "code",
                "format": fmt, "rawQuery": True, "rawSql": panel.query}
    return {"refId": "A", "datasource": PROMETHEUS, "editorMode": "code",
            "expr": panel.query, "legendFormat": panel.legend or "__auto", "range": True}


def _panel(index: int, panel: Panel) -> dict[str, object]:
    width = 24 if panel.kind == "table" else 12
    return {
        "id": index + 1,
        "type": panel.kind,
        "title": panel.title,
        "description": f"Source: {panel.source}. {panel.explain}",
        "datasource": PROJECTION if panel.sql else PROMETHEUS,
        "gridPos": {"h": 8, "w": width, "x": 0 if width == 24 else (index % 2) * 12,
                    "y": index * 8},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {},
        "targets": [_target(panel)],
    }


def dashboard(uid: str) -> dict[str, object]:
    title, panels = DASHBOARDS[uid]
    return {
        "uid": uid,
        "title": title,
        "tags": ["grim"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": [_panel(i, p) for i, p in enumerate(panels)],
    }
