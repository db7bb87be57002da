"""Grim's event contracts: models, topic registry, codec, generated JSON Schemas."""

from .base import TOKEN_PATTERN, Event, new_event_id, utcnow
from .codec import MalformedEvent, decode, decode_any, encode
from .events import *  # noqa: F403
from .events import EVENT_TYPES
from .topics import TOPICS, TopicSpec, topic_for

__all__ = [
    "EVENT_TYPES",
    "TOKEN_PATTERN",
    "TOPICS",
    "Event",
    "MalformedEvent",
    "TopicSpec",
    "decode",
    "decode_any",
    "encode",
    "new_event_id",
    "topic_for",
    "utcnow",
]
