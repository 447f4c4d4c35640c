"""One pass over a recording's events, feeding a :class:`Screen` and telling observers what happened.

Command extraction, output text and transcripts all watch the same stream; they are observers
so that a transcript can run both on one emulator. Observers see the screen at exact moments:
before each mark's sequence takes effect, before each line feed (only while one of them asks
for it, which keeps the common path at the emulator's speed), after each event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from recorder.cast.model import INPUT, OUTPUT, RESIZE, Event, parse_resize
from recorder.logfmt import get_logger
from recorder.replay.marks import Mark
from recorder.replay.screen import Screen

log = get_logger(__name__)


class Observer:
    """Base observer: every hook does nothing."""

    def wants_line_feeds(self) -> bool:
        """Whether :meth:`on_line_feed` should be called before each LF from now on."""
        return False

    def on_mark(self, screen: Screen, mark: Mark, time: float) -> None:
        """A mark, before its sequence takes effect."""

    def on_line_feed(self, screen: Screen, time: float) -> None:
        """An LF in the output, before it is fed."""

    def on_output(self, screen: Screen, time: float) -> None:
        """An output event was fed completely."""

    def on_input(self, screen: Screen, event: Event) -> None:
        """An input event (keys sent to the shell)."""

    def on_resize(self, screen: Screen, time: float) -> None:
        """The screen was resized."""

    def finish(self, screen: Screen, time: float) -> None:
        """The recording ended (held-back text has been fed)."""


def _feed(screen: Screen, text: str, observers: Sequence[Observer], time: float) -> None:
    for part in screen.split(text):
        if not isinstance(part, str):
            for o in observers:
                o.on_mark(screen, part, time)
            screen.apply(part)
            continue
        # Observers may start or stop wanting LFs at any mark or LF, so ask again each time.
        while part:
            i = part.find("\n") if any(o.wants_line_feeds() for o in observers) else -1
            if i < 0:
                screen.feed_piece(part)
                break
            if i:
                screen.feed_piece(part[:i])
            for o in observers:
                o.on_line_feed(screen, time)
            screen.feed_piece("\n")
            part = part[i + 1 :]


def _overridden(observers: Sequence[Observer], name: str) -> list[Callable[..., None]]:
    """The bound ``name`` hooks of the observers that override the base's no-op."""
    base = getattr(Observer, name)
    return [getattr(o, name) for o in observers if getattr(type(o), name) is not base]


def run(screen: Screen, events: Iterable[Event], observers: Sequence[Observer]) -> Iterator[float]:
    """Replay ``events`` into ``screen``; yield each event's time after observers saw it, then finish."""
    time = 0.0
    bad_resizes = 0
    # Hooks an observer leaves as the base's no-op are not called at all (two calls per event
    # per observer showed in the indexing profile).
    on_output = _overridden(observers, "on_output")
    on_input = _overridden(observers, "on_input")
    feed_if_plain = screen.feed_if_plain
    for ev in events:
        time, code, data = ev
        if code == OUTPUT:
            if not feed_if_plain(data):
                _feed(screen, data, observers, time)
            for hook in on_output:
                hook(screen, time)
        elif code == INPUT:
            for hook in on_input:
                hook(screen, ev)
        elif code == RESIZE:
            size = parse_resize(ev.data)
            if size is None:
                bad_resizes += 1
                log.warning("replay.bad_resize", time=time, data=ev.data[:40])
            else:
                screen.resize(*size)
                for o in observers:
                    o.on_resize(screen, time)
        yield time
    screen.flush()
    for o in observers:
        o.finish(screen, time)
    if bad_resizes:
        log.warning("replay.bad_resizes_skipped", count=bad_resizes)
    yield time
