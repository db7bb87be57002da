"""Settings shared by every Grim process, from the environment (prefix GRIM_).

Each service extends `GrimSettings` with its own fields; names here are stable
(DESIGN.md, "Configuration names").
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class GrimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIM_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:19092"
    database_url: str = "postgresql://grim:grim@127.0.0.1:15432/grim"
    redis_url: str = "redis://127.0.0.1:16379/0"
    secret_key: SecretStr = Field(
        default=SecretStr("dev-only-secret-key-change-me"),
        description="Encrypts secrets at rest (bot tokens, CAPI tokens, gateway keys)",
    )
    admin_token: SecretStr = SecretStr("dev-only-admin-token-change-me")
    service_token: SecretStr = Field(
        default=SecretStr("dev-only-service-token-change-me"),
        description="Bearer token between Grim services (bot-gateway -> payments)",
    )
    public_base_url: str = "http://127.0.0.1:8101"
    namespace: str = Field(
        default="",
        description="Prefix for topics, consumer groups and Redis keys (isolated runs)",
    )

    telegram_api_base: str = "https://api.telegram.org"
    meta_graph_base: str = "https://graph.facebook.com"
    meta_api_version: str = "v21.0"
    mercadopago_api_base: str = "https://api.mercadopago.com"
    pushinpay_api_base: str = "https://api.pushinpay.com.br/api"
    woovi_api_base: str = "https://api.openpix.com.br"
    sandbox_api_base: str = "http://127.0.0.1:8203"

    log_level: str = "INFO"

    def topic(self, stage: str) -> str:
        from grim_schemas.topics import TOPICS

        return TOPICS[stage].name(self.namespace)

    def group(self, name: str) -> str:
        """A consumer group id inside this namespace."""
        return f"{self.namespace}grim.{name}"

    def redis_key(self, *parts: object) -> str:
        return self.namespace + ":".join(str(p) for p in parts)
