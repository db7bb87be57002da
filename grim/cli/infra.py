"""Infrastructure sub-commands: topics, migrations, schemas."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from grim.cli.errors import fail, handle_errors
from grim.settings import GrimSettings

console = Console()
topics_app = typer.Typer(no_args_is_help=True)
db_app = typer.Typer(no_args_is_help=True)
schemas_app = typer.Typer(no_args_is_help=True)


@topics_app.command("create")
@handle_errors
def topics_create(
    replication_factor: int = typer.Option(1, help="Replicas per partition (3 in production)."),
) -> None:
    """Create every topic of the registry with its configuration (idempotent)."""
    from grim.topics_admin import create_topics

    settings = GrimSettings()
    results = asyncio.run(
        create_topics(
            settings.kafka_bootstrap, settings.namespace, replication_factor=replication_factor
        )
    )
    table = Table("topic", "partitions", "result")
    for r in results:
        table.add_row(r.name, str(r.partitions), "created" if r.created else r.note)
    console.print(table)


@topics_app.command("list")
def topics_list() -> None:
    """Show the topic registry: names, keys, partitions, retention."""
    from grim_schemas.topics import TOPICS

    settings = GrimSettings()
    table = Table("topic", "event", "key", "partitions", "retention")
    for spec in TOPICS.values():
        retention = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms // 86400000} d"
        event = spec.model.__name__ if spec.model else "-"
        table.add_row(spec.name(settings.namespace), event, spec.key, str(spec.partitions),
                      retention)
    console.print(table)


@db_app.command("migrate")
@handle_errors
def db_migrate() -> None:
    """Apply pending SQL migrations of every service (safe to run concurrently)."""
    from grim.migrate import migrate

    applied = asyncio.run(migrate(GrimSettings().database_url))
    if not applied:
        console.print("database is up to date")
    for m in applied:
        console.print(f"applied {m.owner} {m.version:04d}_{m.name}")


@schemas_app.command("generate")
def schemas_generate() -> None:
    """Rewrite schemas/jsonschema/*.json from the event models."""
    from grim_schemas.generate import write

    for name in write():
        console.print(f"wrote {name}")


@schemas_app.command("check")
def schemas_check() -> None:
    """Exit 1 if the committed JSON Schema files drifted from the models."""
    from grim_schemas.generate import drift

    problems = drift()
    if problems:
        fail("schema files drifted; run `grim schemas generate`:\n  " + "\n  ".join(problems))
    console.print("schemas are in sync")


def register(app: typer.Typer) -> None:
    """Top-level commands that belong to no area."""

    @app.command("version")
    def version() -> None:
        """Print the installed version."""
        from importlib.metadata import version as dist_version

        console.print(dist_version("grim"))


admin_app = typer.Typer(no_args_is_help=True)


@admin_app.command("serve")
def admin_serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8100, help="Port to listen on."),
) -> None:
    """Serve the admin API (bearer GRIM_ADMIN_TOKEN) with its OpenAPI docs at /docs."""
    import uvicorn

    from grim.admin_app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
