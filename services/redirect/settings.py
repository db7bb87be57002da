"""Settings of the redirect service (env prefix GRIM_, e.g. GRIM_REDIRECT_PORT)."""

from __future__ import annotations

import ipaddress
from functools import cached_property

from pydantic import Field

from grim.settings import GrimSettings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RedirectSettings(GrimSettings):
    redirect_host: str = "127.0.0.1"
    redirect_port: int = 8101
    redirect_trusted_proxies: str = Field(
        default="",
        description="Comma-separated CIDRs whose X-Forwarded-For is believed (e.g. 10.0.0.0/8)",
    )
    redirect_cache_ttl: float = Field(
        default=5.0, description="Seconds a pool stays cached (NOTIFY grim_config clears it sooner)"
    )
    redirect_publish_timeout: float = Field(
        default=1.5, description="Seconds to wait for Kafka's ack before using the outbox"
    )
    redirect_redis_timeout: float = Field(
        default=2.0,
        description="Seconds a click waits for the rotation counter before choosing at random",
    )
    redirect_kafka_retry: float = Field(
        default=2.0, description="Seconds between attempts to (re)connect the Kafka producer"
    )
    redirect_spool_dir: str = Field(
        default=".run/redirect-spool",
        description="Append-only spool for clicks when both Kafka and PostgreSQL are unreachable",
    )
    redirect_bridge_delay_ms: int = Field(
        default=800, description="How long the bridge page lets the Pixel run before leaving"
    )

    @cached_property
    def trusted_networks(self) -> tuple[Network, ...]:
        parts = [p.strip() for p in self.redirect_trusted_proxies.split(",") if p.strip()]
        return tuple(ipaddress.ip_network(p, strict=False) for p in parts)
