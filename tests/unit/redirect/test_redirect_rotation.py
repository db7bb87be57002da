from collections import Counter

import pytest

from grim_redirect.rotation import Candidate, choose, schedule


def bots(*weights: int) -> list[Candidate]:
    return [Candidate(bot_id=100 + i, username=f"bot{i}_bot", weight=w)
            for i, w in enumerate(weights)]


@pytest.mark.parametrize("weights", [(1,), (1, 1), (1, 3), (5, 1, 1), (7, 2, 1, 10)])
def test_every_window_of_total_weight_gives_each_bot_its_weight(weights):
    candidates = bots(*weights)
    total = sum(weights)
    for start in (0, 1, total - 1, 12345):
        picks = Counter(choose(candidates, start + n).bot_id for n in range(total))
        assert picks == {c.bot_id: c.weight for c in candidates}


def test_long_run_is_exactly_proportional():
    candidates = bots(1, 3)
    picks = Counter(choose(candidates, n).bot_id for n in range(1, 201))
    assert picks == {100: 50, 101: 150}


def test_smooth_interleaving_avoids_bursts():
    order = schedule(((1, 5), (2, 1), (3, 1)))
    assert order == (0, 0, 1, 0, 2, 0, 0)


def test_choice_does_not_depend_on_member_order():
    a, b = bots(2, 3), list(reversed(bots(2, 3)))
    assert [choose(a, n).bot_id for n in range(10)] == [choose(b, n).bot_id for n in range(10)]


def test_negative_and_huge_sequences_wrap():
    candidates = bots(1, 1)
    assert choose(candidates, -1).bot_id in (100, 101)
    assert choose(candidates, 2**62).bot_id in (100, 101)


def test_empty_pool_is_refused():
    with pytest.raises(ValueError):
        choose([], 1)


def test_reduced_weights_keep_proportions_with_a_shorter_schedule():
    from grim_redirect.redis_counters import reduced

    assert [c.weight for c in reduced(bots(100, 300, 200))] == [1, 3, 2]
    assert [c.weight for c in reduced(bots(7, 5))] == [7, 5]
