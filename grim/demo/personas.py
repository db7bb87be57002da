"""Who the simulator plays: a deterministic population of visitors (pure, no I/O).

Given a seed (and a run nonce that keeps Telegram ids unique across runs), the
same population comes out: kinds of journey, identifiers, user agents, IPs,
cookies, UTMs and what each one does (duplicates, repeated starts, refunds).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["crawler", "bounce", "browse", "unpaid", "paid", "refunded", "repeat", "organic"]

# Shares of each journey; every kind appears at least once from 16 funnels up.
MIX: tuple[tuple[Kind, float], ...] = (
    ("paid", 0.32), ("unpaid", 0.14), ("browse", 0.12), ("bounce", 0.10),
    ("refunded", 0.08), ("organic", 0.10), ("repeat", 0.07), ("crawler", 0.07),
)

USER_AGENTS = (
    ("Mozilla/5.0 (Linux; Android 13; SM-A536E) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/446.0.0.41.109;FBBV/553372155;FBDV/iPhone14,5;FBMD/"
    "iPhone;FBSN/iOS;FBSV/17.2;FBSS/3;FBID/phone;FBLC/pt_BR;FBOP/5]"),
    ("Mozilla/5.0 (Linux; Android 12; moto g(60)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome"
    "/119.0.6045.193 Mobile Safari/537.36 Instagram 311.0.0.32.118 Android (31/12; 400dpi; "
    "1080x2220; motorola; moto g(60); hanoip; qcom; pt_BR; 545986883)"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/16.6 Mobile/15E148 Safari/604.1"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"),
)
CRAWLER_AGENTS = (
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "TelegramBot (like TwitterBot)",
)
FIRST_NAMES = ("Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabriela", "Heitor",
               "Íris", "João", "Larissa", "Marcos", "Natália", "Otávio", "Paula", "Renato")
CAMPAIGNS = ("black-friday", "lancamento-curso", "remarketing-7d")
ADS = ("video-depoimento", "carrossel-beneficios", "imagem-oferta", "reels-bastidores")
_FBCLID_CHARS = string.ascii_letters + string.digits + "_-"


@dataclass(frozen=True)
class Persona:
    index: int
    kind: Kind
    user_id: int
    first_name: str
    user_agent: str
    ip: str
    fbclid: str | None
    fbp_cookie: str | None
    fbc_cookie: str | None
    utm: dict[str, str] = field(default_factory=dict)
    beacon: bool = True
    duplicate_update: bool = False
    repeat_start: bool = False
    double_tap: bool = False
    duplicate_webhook: bool = False
    product_index: int = 0
    email: str | None = None

    @property
    def clicks(self) -> int:
        return {"organic": 0, "repeat": 2}.get(self.kind, 1)

    @property
    def starts(self) -> bool:
        return self.kind not in ("crawler", "bounce")

    @property
    def charges(self) -> bool:
        return self.kind not in ("crawler", "bounce", "browse")

    @property
    def pays(self) -> bool:
        return self.kind in ("paid", "refunded", "repeat", "organic")


def kinds_for(count: int, rng: random.Random) -> list[Kind]:
    """Exact shares by largest remainder, then shuffled."""
    raw = [(kind, share * count) for kind, share in MIX]
    counts = {kind: int(x) for kind, x in raw}
    left = count - sum(counts.values())
    for kind, x in sorted(raw, key=lambda kx: kx[1] - int(kx[1]), reverse=True)[:left]:
        counts[kind] += 1
    kinds = [kind for kind, _ in MIX for _ in range(counts[kind])]
    rng.shuffle(kinds)
    return kinds


def _fbclid(rng: random.Random) -> str:
    return "IwAR" + "".join(rng.choice(_FBCLID_CHARS) for _ in range(rng.randint(50, 72)))


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.15:
        a, b, c = rng.randrange(1, 0xFFFF), rng.randrange(0xFFFF), rng.randrange(1, 0xFFFF)
        return f"2804:{a:x}:{b:x}::{c:x}"
    return f"{rng.choice((177, 179, 187, 189, 191, 200, 201))}.{rng.randrange(256)}." \
           f"{rng.randrange(256)}.{rng.randrange(1, 255)}"


def build_population(count: int, seed: int, nonce: int, now_ms: int,
                     only: Kind | None = None) -> list[Persona]:
    """`count` personas (all of kind `only` when given, else the MIX); `nonce` (e.g. the
    run's start second) makes Telegram ids unique."""
    rng = random.Random(seed)
    base_user = 6_000_000_000 + (nonce % 1_000_000) * 10_000
    people = []
    kinds = [only] * count if only else kinds_for(count, rng)
    for index, kind in enumerate(kinds):
        crawler = kind == "crawler"
        fbclid = _fbclid(rng) if kind != "organic" else None
        cookie_ms = now_ms - rng.randrange(60_000, 30 * 86_400_000)
        returning = kind == "repeat" or rng.random() < 0.3
        fbp = f"fb.1.{cookie_ms}.{rng.randrange(10**9, 10**10)}" if returning else None
        fbc = None
        if fbclid and rng.random() < 0.25:
            # The Pixel already ran on the advertiser's page; ParamBuilder adds a 5th part.
            fbc = f"fb.1.{cookie_ms}.{fbclid}" + (".AbCd" if rng.random() < 0.5 else "")
        name = rng.choice(FIRST_NAMES)
        people.append(Persona(
            index=index, kind=kind, user_id=base_user + index, first_name=name,
            user_agent=rng.choice(CRAWLER_AGENTS if crawler else USER_AGENTS), ip=_ip(rng),
            fbclid=fbclid, fbp_cookie=None if crawler else fbp, fbc_cookie=None if crawler else fbc,
            utm={} if kind == "organic" else {
                "utm_source": "facebook", "utm_medium": "paid",
                "utm_campaign": rng.choice(CAMPAIGNS), "utm_content": rng.choice(ADS),
                "utm_term": f"conjunto-{rng.randrange(1, 5)}"},
            beacon=not crawler and rng.random() < 0.7,
            duplicate_update=rng.random() < 0.2,
            repeat_start=rng.random() < 0.15,
            double_tap=rng.random() < 0.15,
            duplicate_webhook=rng.random() < 0.3,
            product_index=rng.randrange(2),
            email=f"{name.lower()}.{index}@example.com" if rng.random() < 0.6 else None,
        ))
    return people
