"""`grim`: one command-line entry point, a sub-command per area."""

from __future__ import annotations

import importlib

import typer

from grim.cli import infra

app = typer.Typer(
    name="grim",
    help=(
        "Grim: click-to-sale attribution for Telegram sales bots.\n\n"
        "Settings come from GRIM_* environment variables (see README)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (name, "module:attribute", help). Each area owns its sub-app.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("stack", "grim.stack.cli:app", "Run the local Kafka, PostgreSQL and Redis."),
    ("topics", "grim.cli.infra:topics_app", "Kafka topics of the registry."),
    ("db", "grim.cli.infra:db_app", "Database migrations."),
    ("schemas", "grim.cli.infra:schemas_app", "Event contracts and their JSON Schema files."),
    ("admin", "grim.cli.infra:admin_app", "The admin API (pools, pixels, bots, products)."),
    ("bot-gateway", "grim_bot_gateway.cli:app", "Telegram webhook, funnel, deliveries."),
    ("bots", "grim_bot_gateway.cli:bots_app", "Telegram bots, their webhooks and funnels."),
    ("dispatcher", "grim_dispatcher.cli:app", "Meta CAPI delivery worker and the fake Graph."),
    ("dlq", "grim_dispatcher.cli:dlq_app", "Conversions Meta refused: list, show, retry."),
    ("payments", "grim_payments.cli:app", "PIX charges, gateway webhooks, delivery; sandbox gateway."),
    ("products", "grim_payments.cli:products_app", "Products and prices."),
    ("gateways", "grim_payments.cli:gateways_app", "Payment gateway accounts (secrets encrypted)."),
    ("redirect", "grim_redirect.cli:app", "The ad-link redirect service."),
    ("pools", "grim_redirect.cli:pools_app", "Pools of bots behind /go/<slug>."),
    ("pixels", "grim_redirect.cli:pixels_app", "Meta pixels of the seller."),
    ("projector", "grim_projector.cli:app", "The attribution projector (Faust worker)."),
    ("report", "grim_projector.cli:report_app", "Funnel and attribution report."),
    ("replay", "grim_projector.cli:replay_app", "Replay the topics into a new projection."),
    ("services", "grim.demo.cli:services_app", "Start/stop every service and sandbox fake."),
    ("demo", "grim.demo.cli:demo_app", "The whole product locally, with simulated traffic."),
    ("simulate", "grim.demo.cli:simulate_app", "Simulated ad clicks, bot chats and payments."),
]


def _load(target: str) -> typer.Typer:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


for _name, _target, _help in SUBCOMMANDS:
    app.add_typer(_load(_target), name=_name, help=_help)

infra.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
