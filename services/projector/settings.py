"""Projector settings (env prefix GRIM_, like every Grim setting)."""

from __future__ import annotations

from datetime import datetime

from grim_schemas import StageAttributed
from grim_schemas.topics import BOT_USER_PARTITIONS, DAY_MS, TOKEN_PARTITIONS, TopicSpec
from pydantic import Field

from grim.settings import GrimSettings

LIVE = "main"


class ProjectorSettings(GrimSettings):
    projector_port: int = Field(default=8104, description="Faust web server (/metrics, /healthz)")
    projector_host: str = "127.0.0.1"
    projector_projection: str = Field(
        default=LIVE, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="Name of the projection this worker builds ('main' is the live one)")
    projector_rule_version: int = Field(default=1, ge=1)
    projector_store: str = Field(default="rocksdb://", description="Faust table store URL")
    projector_data_dir: str = ".run/projector"
    projector_pending_timeout_s: float = Field(
        default=3600.0, gt=0,
        description="A payment fact with no token to go by is decided unattributed after this")
    projector_wait_timeout_s: float = Field(
        default=86400.0, gt=0,
        description="A stage fact waiting for its click is given up (not sent) after this")
    projector_tick_interval_s: float = Field(default=5.0, gt=0)
    projector_emit_conversions: bool = Field(
        default=True, description="Publish conversions (replays record them only)")
    projector_replay_from: datetime | None = None
    projector_session_timeout_s: float = Field(
        default=10.0, gt=0, description="Kafka group session timeout: how fast a dead worker's "
        "partitions move to another")
    # Every batch pays fixed round trips (Postgres, produce acks, changelog flush) and
    # writes each touched key once: bigger batches amortise both. Faust hands records
    # over one by one (a few thousand a second), so under load `within` usually ends a
    # batch; when traffic is light it is the latency a batch may add.
    projector_batch_size: int = Field(default=4000, ge=1)
    projector_batch_within_s: float = Field(default=0.25, gt=0)

    @property
    def is_live(self) -> bool:
        return self.projector_projection == LIVE

    def app_id(self) -> str:
        """Faust app id = consumer group and changelog prefix: a new projection or rule
        version starts from the beginning of the topics, side by side."""
        return f"{self.namespace}grim-projector-{self.projector_projection}-r{self.projector_rule_version}"

    def internal_topics(self) -> list[TopicSpec]:
        """Topics this worker owns: its ticks and, for a replay, its own attributed hop."""
        base = f"projector.{self.projector_projection}-r{self.projector_rule_version}"
        specs = [TopicSpec(f"{base}.ticks", 1, None, "bot_id:telegram_user_id",
                           BOT_USER_PARTITIONS, retention_ms=DAY_MS)]
        if not self.is_live:
            specs.append(TopicSpec(f"{base}.attributed", 1, StageAttributed, "tracking_token",
                                   TOKEN_PARTITIONS))
        return specs

    def attributed_topic(self) -> str:
        # The live projection publishes the public topic; a replay keeps its own hop so the
        # two never read each other's decisions.
        if self.is_live:
            return self.topic("attributed")
        return self.internal_topics()[1].name(self.namespace)

    def ticks_topic(self) -> str:
        return self.internal_topics()[0].name(self.namespace)
