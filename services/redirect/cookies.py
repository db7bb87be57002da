"""The cookie beacon's contract: what the bridge page may report after the Pixel ran."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from grim_schemas import ClickCookiesReported
from grim_schemas.base import TOKEN_PATTERN

from .capture import valid_fb_cookie
from .clicks import PRODUCER

MAX_BODY = 4096
MAX_COOKIE = 1024


class CookieReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_token: str = Field(pattern=TOKEN_PATTERN)
    fbp: str | None = Field(default=None, max_length=MAX_COOKIE)
    fbc: str | None = Field(default=None, max_length=MAX_COOKIE)

    @field_validator("fbp", "fbc")
    @classmethod
    def _meta_format(cls, value: str | None) -> str | None:
        if value is not None and not valid_fb_cookie(value):
            raise ValueError("expected Meta's cookie format fb.<n>.<ms>.<value>[.<appendix>]")
        return value


def report_event(
    report: CookieReport, client_ip: str | None, user_agent: str | None
) -> ClickCookiesReported | None:
    """The event to publish, or None when the browser had no Meta cookie to report."""
    if report.fbp is None and report.fbc is None:
        return None
    return ClickCookiesReported(
        producer=PRODUCER,
        tracking_token=report.tracking_token,
        fbp=report.fbp,
        fbc=report.fbc,
        client_ip=client_ip,
        user_agent=user_agent,
    )
