"""Replay timing generators, driven by a fake clock: nothing here waits for real."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from recorder.cast import Event, Step, cap_idle, clip, open_cast, pace, relative, speed, to_absolute
from recorder.errors import CastValueError

EVENTS = [Event(0.5, "o", "a"), Event(1.0, "o", "b"), Event(6.0, "i", "c"), Event(6.25, "o", "d")]


class FakeClock:
    """A clock that only moves when something sleeps (or the test says so)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_relative_turns_absolute_times_into_delays() -> None:
    assert list(relative(EVENTS)) == [
        Step(0.5, "o", "a"),
        Step(0.5, "o", "b"),
        Step(5.0, "i", "c"),
        Step(0.25, "o", "d"),
    ]


def test_relative_never_yields_negative_delays() -> None:
    events = [Event(2.0, "o", "a"), Event(1.0, "o", "b"), Event(3.0, "o", "c")]
    assert [s.delay for s in relative(events)] == [2.0, 0.0, 1.0]


def test_to_absolute_inverts_relative() -> None:
    assert list(to_absolute(relative(EVENTS))) == EVENTS
    assert [e.time for e in to_absolute(relative(EVENTS), start=10.0)] == [10.5, 11.0, 16.0, 16.25]


def test_cap_idle_shortens_only_long_pauses() -> None:
    capped = list(to_absolute(cap_idle(relative(EVENTS), 2.0)))
    assert [e.time for e in capped] == [0.5, 1.0, 3.0, 3.25]
    assert list(cap_idle(relative(EVENTS), None)) == list(relative(EVENTS))


def test_speed_divides_delays() -> None:
    assert [e.time for e in to_absolute(speed(relative(EVENTS), 2.0))] == [0.25, 0.5, 3.0, 3.125]
    assert [e.time for e in to_absolute(speed(relative(EVENTS), 0.5))] == [1.0, 2.0, 12.0, 12.5]


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "2"])
def test_bad_speed_and_idle_limit_are_refused_at_call_time(bad: object) -> None:
    with pytest.raises(CastValueError, match="speed"):
        speed([], bad)  # type: ignore[arg-type]
    with pytest.raises(CastValueError, match="idle limit"):
        cap_idle([], bad)  # type: ignore[arg-type]


def test_clip_is_inclusive_and_rebased_by_default() -> None:
    assert list(clip(EVENTS, 1.0, 6.0)) == [Event(0.0, "o", "b"), Event(5.0, "i", "c")]


def test_clip_without_rebase_keeps_absolute_times() -> None:
    assert list(clip(EVENTS, 1.0, 6.0, rebase=False)) == [Event(1.0, "o", "b"), Event(6.0, "i", "c")]


def test_clip_prelude_emits_earlier_events_at_the_start() -> None:
    assert list(clip(EVENTS, 5.0, prelude=True)) == [
        Event(0.0, "o", "a"),
        Event(0.0, "o", "b"),
        Event(1.0, "i", "c"),
        Event(1.25, "o", "d"),
    ]
    assert [e.time for e in clip(EVENTS, 5.0, prelude=True, rebase=False)] == [5.0, 5.0, 6.0, 6.25]


def test_clip_stops_reading_after_end() -> None:
    endless = (Event(float(i), "o", str(i)) for i in itertools.count())
    assert [e.data for e in clip(endless, 3, 5)] == ["3", "4", "5"]


@pytest.mark.parametrize(
    ("start", "end"), [(-1.0, None), (float("nan"), None), (5.0, 4.0), (0.0, float("nan"))]
)
def test_bad_clip_bounds_are_refused(start: float, end: float | None) -> None:
    with pytest.raises(CastValueError, match="clip"):
        clip(EVENTS, start, end)


def test_pace_sleeps_until_each_event_is_due() -> None:
    clock = FakeClock()
    seen = [(e.data, clock.now) for e in pace(EVENTS, clock=clock, sleep=clock.sleep)]
    assert seen == [("a", 100.5), ("b", 101.0), ("c", 106.0), ("d", 106.25)]
    assert clock.sleeps == [0.5, 0.5, 5.0, 0.25]


def test_pace_counts_time_the_consumer_spent() -> None:
    clock = FakeClock()
    for event in pace(EVENTS, clock=clock, sleep=clock.sleep):
        if event.data == "b":
            clock.now += 3.0  # the consumer was slow: 3 s of the 5 s pause already passed
    assert clock.sleeps == [0.5, 0.5, 2.0, 0.25]


def test_pace_never_sleeps_when_behind() -> None:
    clock = FakeClock()
    for _ in pace(EVENTS, clock=clock, sleep=clock.sleep):
        clock.now += 10.0
    assert clock.sleeps == [0.5]


def test_pipeline_over_a_real_recording(corpus: Path) -> None:
    with open_cast(corpus / "asciinema__full-v2.cast") as reader:
        events = list(reader.events())
    # times 0.000001, 1.0, 2.3, 5.600001, 10.5: cap pauses at 2 s, then play twice as fast
    played: Iterator[Event] = to_absolute(speed(cap_idle(relative(events), 2.0), 2.0))
    assert [e.time for e in played] == pytest.approx([0.0000005, 0.5, 1.15, 2.15, 3.15], abs=1e-9)
