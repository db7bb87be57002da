"""Clear CLI errors: a message and exit code 1, never a traceback for expected failures."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import typer

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the failures an operator can fix (connection refused, bad config) into messages."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from aiokafka.errors import KafkaError
        from asyncpg import PostgresError
        from pydantic import ValidationError

        try:
            return func(*args, **kwargs)
        except (OSError, KafkaError) as exc:
            fail(f"{type(exc).__name__}: {exc} (is the stack up? `grim stack status`)")
        except PostgresError as exc:
            fail(f"database: {exc}")
        except ValidationError as exc:
            fail(f"invalid input: {exc}")
        except (ValueError, RuntimeError) as exc:
            fail(str(exc))

    return wrapper
