"""grim.partition gives exactly the partitions of Kafka's default partitioner."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference
from hypothesis import given
from hypothesis import strategies as st

from grim.partition import KeyPartitioner, murmur2, partition_for


@given(st.binary(max_size=200))
def test_same_hash_as_aiokafka_for_any_key(key: bytes) -> None:
    assert murmur2(key) == reference(key)


def test_same_partitions_as_aiokafka_default_partitioner() -> None:
    rng = random.Random(7)
    keys = [rng.randbytes(rng.randrange(0, 70)) for _ in range(2000)]
    keys += [b"", b"a", b"ab", b"abc", b"organic:42", b"8000000001:77"]
    ours, theirs = KeyPartitioner(), DefaultPartitioner()
    parts = list(range(6))
    assert [ours(k, parts, parts) for k in keys] == [theirs(k, parts, parts) for k in keys]
    assert {partition_for(k, 6) for k in keys} == set(parts)


def test_keyless_records_go_to_an_available_partition() -> None:
    picks = {KeyPartitioner()(None, [0, 1, 2, 3], [2]) for _ in range(20)}
    assert picks == {2}
