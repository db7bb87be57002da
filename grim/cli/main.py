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
