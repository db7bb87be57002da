"""Batch supervision for the Faust agents: retry what is transient, crash on the rest."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import EventT

from . import metrics

log = logging.getLogger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (
    KafkaError, ProducerSendError, OSError, asyncio.TimeoutError,
    asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.exceptions.TooManyConnectionsError, asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)


async def handle_or_exit(handler: Callable[[Sequence[EventT]], Awaitable[None]],
                         events: Sequence[EventT], backoff_max: float = 10.0) -> None:
    """Run a batch handler until it succeeds; never let the batch be acknowledged otherwise.

    Faust's `take_events` acknowledges a batch when the loop leaves it, even by an
    exception or a cancellation. So transient failures (Kafka, Postgres, network) are
    retried here with backoff (the handler keeps its state changes for last, so a retry
    starts clean), and anything else ends the process at once, like a SIGKILL: the
    batch is redelivered after the restart and its effects are idempotent.
    """
    delay = 0.2
    while True:
        try:
            await handler(events)
            return
        except TRANSIENT as exc:
            metrics.BATCH_RETRIES.inc()
            log.warning("batch failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                _exit_unacknowledged("stopped while retrying a batch", 0)
            delay = min(backoff_max, delay * 2)
        except asyncio.CancelledError:
            _exit_unacknowledged("stopped in the middle of a batch", 0)
        except Exception:  # a bug or bad state: crash-only, never acknowledge
            log.exception("batch handler failed")
            _exit_unacknowledged("unexpected failure", 70)


def _exit_unacknowledged(reason: str, code: int) -> None:
    log.warning("%s: exiting without acknowledging it (it will be redelivered)", reason)
    logging.shutdown()
    os._exit(code)
