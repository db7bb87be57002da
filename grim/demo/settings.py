"""Settings of the product run (`grim demo`, `grim services`, `grim simulate`).

Ports of every service and sandbox stand-in, the run dir, and the optional real
Meta credentials: with GRIM_DEMO_PIXEL_ID, GRIM_DEMO_META_ACCESS_TOKEN and
GRIM_DEMO_TEST_EVENT_CODE set, conversions go to the real Graph API
(GRIM_META_GRAPH_BASE) as test events that show up in Events Manager.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from grim.settings import GrimSettings

SANDBOX_PIXEL_ID = "1234567890123456"


class DemoSettings(GrimSettings):
    demo_run_dir: str = Field(default=".run", description="Pidfiles and logs go to <this>/services")
    demo_admin_port: int = 8100
    demo_redirect_port: int = 8101
    demo_bot_gateway_port: int = 8102
    demo_payments_port: int = 8103
    demo_projector_port: int = 8104
    demo_dispatcher_port: int = 8105
    demo_telegram_port: int = 8201
    demo_graph_port: int = 8202
    demo_sandbox_port: int = 8203
    demo_graph_fault_rate: float = Field(default=0.0, ge=0, le=1)

    demo_pixel_id: str | None = Field(default=None, description="A real pixel id (digits)")
    demo_meta_access_token: SecretStr | None = None
    demo_test_event_code: str | None = Field(
        default=None, description="Events Manager > Test events code (e.g. TEST12345)")

    @property
    def real_meta(self) -> bool:
        return bool(self.demo_pixel_id and self.demo_meta_access_token)

    @property
    def pixel_id(self) -> str:
        return self.demo_pixel_id if self.real_meta and self.demo_pixel_id else SANDBOX_PIXEL_ID

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    @property
    def redirect_url(self) -> str:
        return self.url(self.demo_redirect_port)

    @property
    def bot_gateway_url(self) -> str:
        return self.url(self.demo_bot_gateway_port)

    @property
    def payments_url(self) -> str:
        return self.url(self.demo_payments_port)

    @property
    def telegram_url(self) -> str:
        return self.url(self.demo_telegram_port)

    @property
    def graph_url(self) -> str:
        return self.url(self.demo_graph_port)

    @property
    def sandbox_url(self) -> str:
        return self.url(self.demo_sandbox_port)
