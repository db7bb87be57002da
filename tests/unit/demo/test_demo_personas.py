"""The simulated population: deterministic, every journey kind, realistic identifiers."""

from __future__ import annotations

import re
from collections import Counter

from grim.demo.personas import MIX, build_population, kinds_for

FBC = re.compile(r"^fb\.1\.\d{13}\.IwAR[A-Za-z0-9_-]+(\.AbCd)?$")
FBP = re.compile(r"^fb\.1\.\d{13}\.\d{10}$")


def test_same_seed_same_population_other_seed_differs() -> None:
    a = build_population(60, seed=3, nonce=1, now_ms=1_700_000_000_000)
    b = build_population(60, seed=3, nonce=1, now_ms=1_700_000_000_000)
    c = build_population(60, seed=4, nonce=1, now_ms=1_700_000_000_000)
    assert a == b
    assert a != c


def test_shares_follow_the_mix_and_every_kind_appears() -> None:
    import random

    kinds = kinds_for(100, random.Random(1))
    counts = Counter(kinds)
    assert len(kinds) == 100
    for kind, share in MIX:
        assert counts[kind] == round(share * 100)
    assert set(kinds_for(16, random.Random(2))) == {k for k, _ in MIX}


def test_identifiers_look_like_meta_and_telegram_ones() -> None:
    people = build_population(200, seed=9, nonce=77, now_ms=1_700_000_000_000)
    assert len({p.user_id for p in people}) == 200
    assert all(2**32 < p.user_id < 2**52 for p in people)  # 64-bit ids, beyond int32
    for p in people:
        if p.fbc_cookie:
            assert FBC.match(p.fbc_cookie) and p.fbclid and p.fbclid in p.fbc_cookie
        if p.fbp_cookie:
            assert FBP.match(p.fbp_cookie)
        if p.kind == "organic":
            assert p.fbclid is None and p.clicks == 0 and p.pays
        if p.kind == "crawler":
            assert not p.starts and not p.beacon and p.fbp_cookie is None
    assert any(p.fbc_cookie and p.fbc_cookie.endswith(".AbCd") for p in people)
    assert any(":" in p.ip for p in people) and any("." in p.ip for p in people)


def test_nonce_moves_telegram_ids_so_reruns_are_new_users() -> None:
    first = build_population(10, seed=1, nonce=100, now_ms=0)
    again = build_population(10, seed=1, nonce=101, now_ms=0)
    assert not {p.user_id for p in first} & {p.user_id for p in again}


def test_only_builds_one_kind() -> None:
    assert {p.kind for p in build_population(12, 1, 1, 0, only="unpaid")} == {"unpaid"}
