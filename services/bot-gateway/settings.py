"""Settings of the bot gateway (GRIM_* environment variables)."""

from __future__ import annotations

from pydantic import Field

from grim.settings import GrimSettings


class BotGatewaySettings(GrimSettings):
    bot_gateway_host: str = "127.0.0.1"
    bot_gateway_port: int = 8102
    bot_gateway_public_url: str = Field(
        default="https://127.0.0.1:8443",
        description="Public base URL Telegram calls (webhook = <this>/webhook/telegram/<bot>)",
    )
    payments_url: str = "http://127.0.0.1:8103"

    # Telegram waits up to 60 s for a webhook answer; past this we answer 503 so it retries.
    publish_timeout_seconds: float = 10.0
    dedup_ttl_seconds: int = 7 * 24 * 3600
    bot_cache_seconds: float = 30.0

    telegram_timeout_seconds: float = 15.0
    telegram_max_attempts: int = 5
    telegram_backoff_seconds: float = 0.5
    # Telegram's documented limits: ~1 message/s per chat, ~30 messages/s per bot.
    per_chat_interval_seconds: float = 1.0
    per_bot_rate: float = 30.0

    payments_timeout_seconds: float = 20.0
    payments_max_attempts: int = 3

    # A delivery claim older than this is presumed abandoned (crash) and re-sent.
    delivery_claim_seconds: float = 60.0

    bot_gateway_run_consumers: bool = Field(
        default=True, description="Run the funnel and delivery consumers in this process"
    )
    webhook_max_connections: int = 40
    consumer_fetch_min_bytes: int = 64 * 1024
    consumer_fetch_max_wait_ms: int = 100
