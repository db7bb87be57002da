"""The one place that wires the projector: settings, Postgres, the Faust app, the worker."""

from __future__ import annotations

import asyncio
import logging

import faust
import mode.loop

from grim.db import create_pool
from grim.topics_admin import create_topics

from .app import build_app
from .handlers import ProjectorHandlers
from .pg_projection import PgProjection
from .settings import ProjectorSettings

log = logging.getLogger(__name__)


class LazyProjection:
    """Opens the Postgres pool on first use, inside the worker's event loop."""

    def __init__(self, settings: ProjectorSettings) -> None:
        self.settings = settings
        self._projection: PgProjection | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> PgProjection:
        if self._projection is None:
            async with self._lock:
                if self._projection is None:
                    pool = await create_pool(self.settings.database_url, max_size=4)
                    projection = PgProjection(pool, self.settings.projector_projection,
                                              self.settings.app_id(),
                                              self.settings.projector_rule_version)
                    await projection.register(self.settings.projector_replay_from)
                    self._projection = projection
        return self._projection


def build(settings: ProjectorSettings) -> tuple[faust.App, ProjectorHandlers]:
    return build_app(settings, LazyProjection(settings))


def run_worker(settings: ProjectorSettings, loglevel: str = "info") -> None:
    """Run the worker in this process until SIGTERM/SIGINT."""
    # Most of Faust's per-record cost is event-loop work (a task pair per record in its
    # consumer loop, futures, callbacks): uvloop does it in C, ~15% less CPU per record
    # here. Chosen before any loop exists, so the consumer thread's loop is one too.
    mode.loop.use("uvloop")
    # Faust only declares topics its agents read directly; ours are created up front.
    asyncio.run(create_topics(settings.kafka_bootstrap, settings.namespace,
                              settings.internal_topics()))
    app, _ = build(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    # At WARN and above Faust shows a terminal spinner and, for it, puts the root logger
    # at DEBUG: every debug call of aiokafka then builds a record. A service has no
    # terminal to spin in.
    worker.spinner = None
    worker.execute_from_commandline()
