"""Settings of the payments service (GRIM_ prefix, on top of the shared ones)."""

from __future__ import annotations

from pydantic import Field

from grim.settings import GrimSettings


class PaymentsSettings(GrimSettings):
    payments_public_url: str = Field(
        default="http://127.0.0.1:8103",
        description="Public base URL of this service: delivery links and gateway webhooks",
    )
    payments_host: str = "127.0.0.1"
    payments_port: int = 8103
    gateway_timeout_seconds: float = 10.0
    expiry_interval_seconds: float = Field(
        default=30.0, description="How often pending charges past their expiry are reconciled"
    )
    expiry_grace_seconds: float = Field(
        default=60.0, description="Wait this long after expiry before asking the gateway"
    )
    expiry_local_after_seconds: float = Field(
        default=3600.0,
        description="Expire locally when the gateway stays unreachable this long after expiry",
    )
    sandbox_webhook_secret: str = Field(
        default="sandbox-webhook-secret-change-me",
        description="Secret the sandbox PIX gateway signs its webhooks with",
    )
    sandbox_port: int = 8203

    def webhook_url(self, gateway: str, account_id: int) -> str:
        return f"{self.payments_public_url.rstrip('/')}/webhooks/{gateway}/{account_id}"

    def delivery_url(self, token: str) -> str:
        return f"{self.payments_public_url.rstrip('/')}/delivery/{token}"
