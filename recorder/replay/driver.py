"""One pass over a recording's events, feeding a :class:`Screen` and telling observers what happened.

Command extraction, output text and transcripts all watch the same stream; they are observers
so that a transcript can run both on one emulator. Observers see the screen at exact moments:
before each mark's sequence takes effect, before each line feed (only while one of them asks
for it, which keeps the common path at the emulator's speed), after each output event that is
not plain text, and at each input event an observer looks at the screen for. Plain output (no
escape, no LF: typed echo, most of a shell recording's events) is held and fed in one piece
when one of those moments comes (see :func:`run`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from recorder.cast.model import INPUT, OUTPUT, RESIZE, Event, parse_resize
from recorder.logfmt import get_logger
from recorder.replay.marks import Mark
from recorder.replay.screen import Screen

log = get_logger(__name__)

#: Plain output held back before it is fed anyway (bounds what a long line without LF holds).
HOLD_CHARS = 16 * 1024


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

    def needs_screen_at(self, screen: Screen, event: Event) -> bool:
        """Whether :meth:`on_input` looks at the screen for ``event`` (held plain output is fed first).

        Asked only of observers that override :meth:`on_input`, before it is called. Held output
        is plain text: it changes no mark state and does not switch screens.
        """
        return True

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


def _overriding(observers: Sequence[Observer], name: str) -> list[Observer]:
    """The observers whose ``name`` hook overrides the base's no-op."""
    base = getattr(Observer, name)
    return [o for o in observers if getattr(type(o), name) is not base]


def run(
    screen: Screen, events: Iterable[Event], observers: Sequence[Observer], *, hold_chars: int = HOLD_CHARS
) -> Iterator[float]:
    """Replay ``events`` into ``screen``; yield each event's time after observers saw it, then finish.

    Plain output (no escape, no LF) is held back and fed in one piece when something needs the
    screen: output that is not plain, a resize, an input event an observer looks at the screen for
    (:meth:`Observer.needs_screen_at`), :data:`HOLD_CHARS` characters held, or the end. Typed echo
    is most events of a shell recording, and one feed per typed line instead of one per key is what
    makes this pass cheap. The screen is the same as fed event by event; a row's change time is the
    time of the last held event. ``hold_chars=0`` feeds every event as it comes.
    """
    time = 0.0
    bad_resizes = 0
    # Hooks an observer leaves as the base's no-op are not called at all (two calls per event
    # per observer showed in the indexing profile).
    on_output = [o.on_output for o in _overriding(observers, "on_output")]
    key_watchers = _overriding(observers, "on_input")
    on_input = [o.on_input for o in key_watchers]
    # Only an observer that looks at keys can need the screen at one.
    screen_checks = [o.needs_screen_at for o in key_watchers]
    is_plain = screen.is_plain
    held: list[str] = []
    held_chars = 0
    held_time = 0.0

    def release() -> None:
        nonlocal held_chars
        text = held[0] if len(held) == 1 else "".join(held)
        held.clear()
        held_chars = 0
        screen.feed_piece(text)
        for hook in on_output:
            hook(screen, held_time)

    for ev in events:
        time, code, data = ev
        if code == OUTPUT:
            if is_plain(data):
                held.append(data)
                held_chars += len(data)
                held_time = time
                if held_chars >= hold_chars:
                    release()
            else:
                if held:
                    release()
                _feed(screen, data, observers, time)
                for hook in on_output:
                    hook(screen, time)
        elif code == INPUT:
            if held:
                for check in screen_checks:
                    if check(screen, ev):
                        release()
                        break
            for key_hook in on_input:
                key_hook(screen, ev)
        elif code == RESIZE:
            if held:
                release()
            size = parse_resize(ev.data)
            if size is None:
                bad_resizes += 1
                log.warning("replay.bad_resize", time=time, data=ev.data[:40])
            else:
                screen.resize(*size)
                for o in observers:
                    o.on_resize(screen, time)
        yield time
    if held:
        release()
    screen.flush()
    for o in observers:
        o.finish(screen, time)
    if bad_resizes:
        log.warning("replay.bad_resizes_skipped", count=bad_resizes)
    yield time
