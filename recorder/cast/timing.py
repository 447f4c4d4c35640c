"""Replay timing as a chain of small generators; nothing here sleeps or reads a clock by itself.

A typical pipeline::

    steps = relative(reader.events())        # Event(absolute) -> Step(delay)
    steps = cap_idle(steps, header.idle_time_limit)
    steps = speed(steps, 2.0)
    for event in pace(to_absolute(steps), clock=time.monotonic, sleep=time.sleep):
        ...

``clip`` works on absolute events (see its docstring for what it does to times). ``pace`` takes the
clock and the sleep function as arguments, so tests drive it with a fake clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from recorder.cast.model import Event
from recorder.errors import CastValueError


@dataclass(frozen=True, slots=True)
class Step:
    """An event with the delay since the previous one instead of an absolute time."""

    delay: float
    code: str
    data: str


def _check_positive(name: str, value: float) -> None:
    if type(value) not in (int, float) or not (math.isfinite(value) and value > 0):
        raise CastValueError(f"{name} must be a positive finite number, got {value!r}")


def relative(events: Iterable[Event]) -> Iterator[Step]:
    """Absolute events to delays; a time going backwards gives a zero delay, never a negative one."""
    previous = 0.0
    for event in events:
        delay = event.time - previous
        if delay < 0:
            delay = 0.0
        else:
            previous = event.time
        yield Step(delay, event.code, event.data)


def cap_idle(steps: Iterable[Step], limit: float | None) -> Iterator[Step]:
    """Shorten every delay longer than ``limit`` seconds to ``limit``; None passes delays through."""
    if limit is not None:
        _check_positive("idle limit", limit)
    return _cap_idle(steps, limit)


def _cap_idle(steps: Iterable[Step], limit: float | None) -> Iterator[Step]:
    for step in steps:
        if limit is not None and step.delay > limit:
            yield Step(limit, step.code, step.data)
        else:
            yield step


def speed(steps: Iterable[Step], factor: float) -> Iterator[Step]:
    """Divide every delay by ``factor`` (2.0 plays twice as fast)."""
    _check_positive("speed", factor)
    return _speed(steps, factor)


def _speed(steps: Iterable[Step], factor: float) -> Iterator[Step]:
    if factor == 1:
        yield from steps
        return
    for step in steps:
        yield Step(step.delay / factor, step.code, step.data)


def to_absolute(steps: Iterable[Step], start: float = 0.0) -> Iterator[Event]:
    """Delays back to absolute times, counting from ``start``."""
    time = start
    for step in steps:
        time += step.delay
        yield Event(time, step.code, step.data)


def clip(
    events: Iterable[Event],
    start: float = 0.0,
    end: float | None = None,
    *,
    rebase: bool = True,
    prelude: bool = False,
) -> Iterator[Event]:
    """The events with ``start <= time <= end`` (both inclusive; ``end`` None means to the end).

    With ``rebase`` (the default) times are shifted by ``-start``, so the clip plays from 0; without
    it the original absolute times are kept. With ``prelude``, the events before ``start`` are not
    dropped but emitted at ``start`` (time 0 when rebased), so a terminal replaying the clip shows
    the screen as it was at ``start``. Stops reading at the first event after ``end``.
    """
    if type(start) not in (int, float) or not math.isfinite(start) or start < 0:
        raise CastValueError(f"clip start must be a non-negative number, got {start!r}")
    if end is not None and (type(end) not in (int, float) or math.isnan(end) or end < start):
        raise CastValueError(f"clip end must be a number not before start ({start}), got {end!r}")
    return _clip(events, float(start), end, rebase, prelude)


def _clip(
    events: Iterable[Event], start: float, end: float | None, rebase: bool, prelude: bool
) -> Iterator[Event]:
    offset = start if rebase else 0.0
    for event in events:
        if event.time < start:
            if prelude:
                yield Event(start - offset, event.code, event.data)
            continue
        if end is not None and event.time > end:
            return
        yield Event(event.time - offset, event.code, event.data) if offset else event


def pace(
    events: Iterable[Event],
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Iterator[Event]:
    """Yield each absolute event once ``clock()`` has advanced that far since the first ``next()``.

    Waiting is ``sleep(seconds)``, given by the caller; time spent by the consumer between events
    counts, so a slow consumer does not stretch the recording.
    """
    iterator = iter(events)
    origin: float | None = None
    for event in iterator:
        if origin is None:
            origin = clock()
        wait = event.time - (clock() - origin)
        if wait > 0:
            sleep(wait)
        yield event
