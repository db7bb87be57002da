"""The topic registry: one event type per topic, named `grim.<stage>.v<N>`.

Topics joined in one step must be co-partitioned: every topic keyed by bot user
shares `BOT_USER_PARTITIONS`, every topic keyed by tracking token shares
`TOKEN_PARTITIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from .events import (
    BotStarted,
    ClickCookiesReported,
    ClickRecorded,
    ConversionRequested,
    DeliveryOpened,
    Event,
    PaymentConfirmed,
    PaymentExpired,
    PaymentRefunded,
    PixGenerated,
    StageAttributed,
    TelegramUpdateReceived,
)

TOKEN_PARTITIONS = 6
BOT_USER_PARTITIONS = 6
BOT_PARTITIONS = 6
DAY_MS = 24 * 3600 * 1000
FOREVER = -1


@dataclass(frozen=True)
class TopicSpec:
    stage: str
    version: int
    model: type[Event] | None
    key: str
    partitions: int
    retention_ms: int = FOREVER
    compacted: bool = False
    description: str = ""
    extra_config: dict[str, str] = field(default_factory=dict)

    @property
    def base_name(self) -> str:
        return f"grim.{self.stage}.v{self.version}"

    def name(self, namespace: str = "") -> str:
        """The topic's name; a namespace prefixes it (isolated test runs, side-by-side stacks)."""
        return f"{namespace}{self.base_name}"

    def config(self, replication_factor: int = 1) -> dict[str, str]:
        cfg = {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": "compact" if self.compacted else "delete",
            # With acks=all, two in-sync copies survive one broker loss; one node has one.
            "min.insync.replicas": "2" if replication_factor >= 3 else "1",
        }
        cfg.update(self.extra_config)
        return cfg


# Stage facts are the source of truth for replays: kept forever.
TOPICS: dict[str, TopicSpec] = {
    spec.stage: spec
    for spec in (
        TopicSpec("click", 1, ClickRecorded, "tracking_token", TOKEN_PARTITIONS,
                  description="Ad clicks captured by the redirect"),
        TopicSpec("click-cookies", 1, ClickCookiesReported, "tracking_token", TOKEN_PARTITIONS,
                  description="Browser cookies reported by the bridge page"),
        TopicSpec("telegram-updates", 1, TelegramUpdateReceived, "bot_id", BOT_PARTITIONS,
                  retention_ms=30 * DAY_MS,
                  description="Raw Telegram updates accepted by the webhook"),
        TopicSpec("start", 1, BotStarted, "bot_id:telegram_user_id", BOT_USER_PARTITIONS,
                  description="/start commands"),
        TopicSpec("pix-generated", 1, PixGenerated, "bot_id:telegram_user_id",
                  BOT_USER_PARTITIONS, description="PIX charges created"),
        TopicSpec("paid", 1, PaymentConfirmed, "bot_id:telegram_user_id", BOT_USER_PARTITIONS,
                  description="Payments confirmed by a gateway"),
        TopicSpec("refunded", 1, PaymentRefunded, "bot_id:telegram_user_id",
                  BOT_USER_PARTITIONS, description="Refunds and chargebacks"),
        TopicSpec("expired", 1, PaymentExpired, "bot_id:telegram_user_id", BOT_USER_PARTITIONS,
                  description="Charges that expired unpaid"),
        TopicSpec("delivered", 1, DeliveryOpened, "bot_id:telegram_user_id",
                  BOT_USER_PARTITIONS, description="Delivery pages opened"),
        TopicSpec("attributed", 1, StageAttributed, "tracking_token", TOKEN_PARTITIONS,
                  description="Stage facts with the token the projector assigned"),
        TopicSpec("conversions", 1, ConversionRequested, "tracking_token", TOKEN_PARTITIONS,
                  retention_ms=30 * DAY_MS, description="CAPI events to send"),
        TopicSpec("capi-retry", 1, ConversionRequested, "pixel_id", TOKEN_PARTITIONS,
                  retention_ms=8 * DAY_MS, description="Conversions waiting for a later retry"),
        TopicSpec("capi-dlq", 1, None, "pixel_id", 1,
                  description="Conversions Meta refused for good, with the reason"),
        TopicSpec("dead-letters", 1, None, "source topic", 1,
                  description="Records no consumer could decode, with topic/partition/offset"),
    )
}

STAGE_OF_TYPE: dict[str, str] = {
    spec.model.model_fields["type"].default: stage
    for stage, spec in TOPICS.items()
    if spec.model is not None and stage != "capi-retry"
}


def topic_for(event: Event | type[Event], namespace: str = "") -> str:
    """The topic an event of this type is published to."""
    return _spec_of(event if isinstance(event, type) else type(event)).name(namespace)


@cache
def _spec_of(model: type[Event]) -> TopicSpec:
    # On the publish path of every event: resolved once per model class (reading
    # model_fields through an instance is deprecated and slow in pydantic).
    return TOPICS[STAGE_OF_TYPE[model.model_fields["type"].default]]


def key_for(event: Event) -> bytes:
    """The record key of an event, from its topic's key definition."""
    if isinstance(event, StageAttributed | ConversionRequested | ClickRecorded
                  | ClickCookiesReported):
        # Organic facts have no token; they still need a stable partition.
        token = event.tracking_token or f"organic:{getattr(event, 'bot_id', '')}"
        return token.encode()
    if isinstance(event, TelegramUpdateReceived):
        return str(event.bot_id).encode()
    bot_id = getattr(event, "bot_id", None)
    user_id = getattr(event, "telegram_user_id", None)
    if bot_id is None or user_id is None:
        raise ValueError(f"{type(event).__name__} has no key fields")
    return f"{bot_id}:{user_id}".encode()
