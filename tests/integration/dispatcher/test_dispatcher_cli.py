"""`grim dlq list|show|retry` against the test database and namespace."""

from __future__ import annotations

import asyncio

from grim_dispatcher import dlq
from grim_dispatcher.classify import Outcome, Verdict
from grim_dispatcher.ledger import Ledger
from typer.testing import CliRunner

from grim.cli.main import app
from tests.support import read_topic

from .conftest import conversion, new_pixel_id


async def test_dlq_commands(grim_settings, namespace, pg_pool) -> None:
    pixel = new_pixel_id()
    conv = conversion(pixel, 1)
    out = Outcome(Verdict.INVALID_EVENTS, status=400, code=100, subcode=2804001,
                  message="bad fbc", fbtrace_id="TRACE1")
    await Ledger(pg_pool).park([dlq.entry(conv, reason=out.reason, kind="invalid_events",
                                          outcome=out)])
    env = {
        "GRIM_DATABASE_URL": grim_settings.database_url,
        "GRIM_KAFKA_BOOTSTRAP": grim_settings.kafka_bootstrap,
        "GRIM_NAMESPACE": namespace,
        "COLUMNS": "250",
    }

    def cli(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(app, list(args), env=env)

    listed = await asyncio.to_thread(cli, "dlq", "list", "--pixel", pixel)
    assert listed.exit_code == 0, listed.output
    assert conv.event_id in listed.output and "1 entry" in listed.output

    shown = await asyncio.to_thread(cli, "dlq", "show", conv.event_id)
    assert shown.exit_code == 0, shown.output
    assert "TRACE1" in shown.output and "2804001" in shown.output

    missing = await asyncio.to_thread(cli, "dlq", "show", "no-such-event")
    assert missing.exit_code == 1 and "no dead-lettered conversion" in missing.output

    unfiltered = await asyncio.to_thread(cli, "dlq", "retry")
    assert unfiltered.exit_code == 1 and "name an event id" in unfiltered.output

    retried = await asyncio.to_thread(cli, "dlq", "retry", "--pixel", pixel)
    assert retried.exit_code == 0, retried.output
    assert "re-published 1" in retried.output
    records = await read_topic(grim_settings.kafka_bootstrap,
                               f"{namespace}grim.conversions.v1", expect=1)
    assert len(records) == 1 and dict(records[0].headers).get(dlq.OPERATOR_RETRY) == b"1"

    after = await asyncio.to_thread(cli, "dlq", "list", "--pixel", pixel)
    assert "0 entries" in after.output
    again = await asyncio.to_thread(cli, "dlq", "retry", "--pixel", pixel)
    assert "re-published 0" in again.output
