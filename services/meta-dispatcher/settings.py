"""Dispatcher settings: GRIM_DISPATCHER_* on top of the shared GRIM_* names."""

from __future__ import annotations

from pydantic import Field

from grim.settings import GrimSettings


class DispatcherSettings(GrimSettings):
    dispatcher_host: str = "127.0.0.1"
    dispatcher_port: int = Field(default=8105, description="/healthz, /readyz, /metrics")
    dispatcher_group_name: str = Field(
        default="dispatcher", description="Consumer group (inside the namespace)"
    )
    dispatcher_batch_max: int = Field(default=1000, ge=1, le=1000)
    dispatcher_fetch_max: int = Field(default=10000, ge=1, description="Records per handled batch")
    dispatcher_linger_ms: int = Field(default=50, ge=0, description="Wait to fill a batch")
    dispatcher_graph_timeout_seconds: float = 10.0
    dispatcher_concurrency: int = Field(default=16, ge=1, description="Graph requests in flight")
    dispatcher_attempts: int = Field(default=4, ge=1, description="In-process tries per batch")
    dispatcher_backoff_base_seconds: float = 0.2
    dispatcher_backoff_cap_seconds: float = 5.0
    dispatcher_retry_delays_seconds: list[float] = Field(
        default=[30, 120, 600, 1800, 3600],
        description="Delays of the retry topic, by retry number (the last one repeats)",
    )
    dispatcher_session_timeout_ms: int = Field(
        default=10000, description="How soon a dead worker's partitions move to another"
    )
    dispatcher_pixel_cache_seconds: float = 5.0
    dispatcher_future_skew_seconds: float = 60.0
    dispatcher_max_future_seconds: float = 3600.0
