"""`grim stack`: the local Kafka (KRaft), PostgreSQL and Redis, started by the project.

Usage: ``stack = Stack(StackConfig.from_env(), echo=print)``, then ``stack.up()``,
``stack.env()`` (the GRIM_* URLs), ``stack.status()`` and ``stack.down()``.
"""

from grim.stack.base import ComponentStatus
from grim.stack.config import StackConfig
from grim.stack.errors import StackError
from grim.stack.manager import Stack

__all__ = ["ComponentStatus", "Stack", "StackConfig", "StackError"]
