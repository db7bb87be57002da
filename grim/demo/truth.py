"""What the simulator did, as the ground truth the projection and Meta are checked against."""

from __future__ import annotations

from dataclasses import dataclass, field

from grim.demo.personas import Persona


@dataclass
class ClickTruth:
    token: str | None
    pageview_event_id: str | None
    bot_username: str
    crawler: bool
    ip: str
    user_agent: str
    fbc: str | None  # what CAPI must carry: the beacon's, else the click's
    fbp: str | None


@dataclass
class JourneyTruth:
    persona: Persona
    clicks: list[ClickTruth] = field(default_factory=list)
    bot_id: int | None = None
    started_token: str | None = None
    payment_id: str | None = None
    amount_cents: int | None = None
    product_id: int | None = None
    paid: bool = False
    refunded: bool = False
    error: str | None = None

    @property
    def attributed_click(self) -> ClickTruth | None:
        return next((c for c in self.clicks if c.token == self.started_token), None)


@dataclass
class GroundTruth:
    journeys: list[JourneyTruth]

    def of(self, kind: str) -> list[JourneyTruth]:
        return [j for j in self.journeys if j.persona.kind == kind]

    @property
    def purchases_expected(self) -> list[JourneyTruth]:
        """Paid sales whose buyer came from an ad click: exactly one Purchase each."""
        return [j for j in self.journeys if j.paid and j.attributed_click is not None]

    @property
    def organic_sales(self) -> list[JourneyTruth]:
        return [j for j in self.journeys if j.paid and j.started_token is None]

    @property
    def unpaid(self) -> list[JourneyTruth]:
        return [j for j in self.journeys if j.payment_id and not j.paid]

    @property
    def human_clicks(self) -> list[ClickTruth]:
        return [c for j in self.journeys for c in j.clicks if not c.crawler]

    @property
    def errors(self) -> list[str]:
        return [f"#{j.persona.index} {j.persona.kind}: {j.error}" for j in self.journeys
                if j.error]

    def counts(self) -> dict[str, int]:
        return {
            "clicks": len(self.human_clicks),
            "crawler_hits": sum(1 for j in self.journeys for c in j.clicks if c.crawler),
            "starts": sum(1 for j in self.journeys if j.bot_id and j.persona.starts),
            "charges": sum(1 for j in self.journeys if j.payment_id),
            "paid": sum(1 for j in self.journeys if j.paid),
            "refunded": sum(1 for j in self.journeys if j.refunded),
            "organic_paid": len(self.organic_sales),
            "purchases_expected": len(self.purchases_expected),
        }


__all__ = ["ClickTruth", "GroundTruth", "JourneyTruth"]
