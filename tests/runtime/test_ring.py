"""RingBuffer: keeps the newest bytes up to its capacity and counts what it drops."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.runtime.ring import RING_BUFFER_SIZE, RingBuffer


def test_default_capacity_is_the_services_256_kib() -> None:
    assert RING_BUFFER_SIZE == 256 * 1024
    assert RingBuffer().capacity == RING_BUFFER_SIZE


def test_keeps_everything_below_capacity() -> None:
    ring = RingBuffer(10)
    assert ring.write(b"abc") == 0
    assert ring.write(b"def") == 0
    assert len(ring) == 6
    assert ring.take() == (b"abcdef", 0)


def test_drops_the_oldest_bytes_on_overflow() -> None:
    ring = RingBuffer(8)
    ring.write(b"012345")
    assert ring.write(b"6789") == 2
    assert ring.dropped == 2
    assert ring.take() == (b"23456789", 2)


def test_a_write_larger_than_capacity_keeps_its_tail() -> None:
    ring = RingBuffer(4)
    ring.write(b"ab")
    assert ring.write(b"0123456789") == 8
    assert ring.take() == (b"6789", 8)


def test_take_empties_the_buffer_and_resets_the_dropped_count() -> None:
    ring = RingBuffer(4)
    ring.write(b"0123456")
    ring.take()
    assert len(ring) == 0
    assert ring.dropped == 0
    assert ring.take() == (b"", 0)


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_must_be_positive(capacity: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        RingBuffer(capacity)


@given(capacity=st.integers(1, 64), writes=st.lists(st.binary(max_size=100), max_size=20))
def test_matches_the_tail_of_everything_written(capacity: int, writes: list[bytes]) -> None:
    ring = RingBuffer(capacity)
    for data in writes:
        ring.write(data)
    everything = b"".join(writes)
    kept, dropped = ring.take()
    assert kept == everything[-capacity:]
    assert dropped == max(0, len(everything) - capacity)
