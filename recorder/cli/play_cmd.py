"""``recorder play``: replay a recording in this terminal (keys: space, ., ], +, -, q).

When stdout is not a terminal and no ``--speed`` is given, the output is written at once, with
no pauses (like ``cat``): a pipe or a file gets the exact bytes, and scripts stay fast. Give
``--speed`` to pace output to a pipe anyway. Keys are read only when stdin is a terminal; it is
put in raw mode for the playback and restored on every way out (end, q, Ctrl-C, SIGTERM,
SIGHUP, an error).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import Annotated, BinaryIO

import typer

from recorder.cast.model import Event
from recorder.cli.common import DataOption, DbOption, data_dir, db_url, fail
from recorder.cli.source import Source, resolve
from recorder.errors import RecorderError
from recorder.replay.export import clip_condensed
from recorder.replay.player import (
    AlternateTracker,
    CastTail,
    KeySource,
    Player,
    PlayResult,
    SleepKeys,
    TerminalKeys,
    live_events,
    parse_offset,
    restore_sequence,
)

#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


def _fileno(stream: object) -> int | None:
    try:
        return int(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return None


class _Terminated(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_as_exceptions() -> Iterator[None]:
    """Without raw mode, SIGTERM and SIGHUP still end playback through the finally blocks."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run(
    player: Player,
    events: Iterable[Event | None],
    out: BinaryIO,
    tracker: AlternateTracker,
    tty_out: bool,
) -> PlayResult:
    try:
        return player.play(events)
    finally:
        if tty_out:
            out.write(restore_sequence(tracker.on).encode())
        out.flush()


def play(
    target: Annotated[str, typer.Argument(help="Connection id, shell:<pk>, or an asciicast file.")],
    whole_shell: Annotated[
        bool, typer.Option("--shell", help="Play every connection of the connection's shell, in order.")
    ] = False,
    speed: Annotated[
        float | None, typer.Option(help="Playback speed (2 = twice as fast); also paces output to a pipe.")
    ] = None,
    idle_limit: Annotated[
        float | None, typer.Option("--idle-limit", help="Shorten pauses longer than this many seconds.")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Start here (seconds, mm:ss or h:mm:ss), screen intact.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Stop here (seconds, mm:ss or h:mm:ss).")
    ] = None,
    pause_on_markers: Annotated[
        bool, typer.Option("--pause-on-markers", help="Pause at every marker (space resumes).")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", help="Tail a recording still being written, until it ends (or q)."),
    ] = False,
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Replay a recording in this terminal: space pause, . step, ] next marker, + / - speed, q quit.

    To a pipe or a file (stdout not a terminal) the output is written at once, unless --speed is
    given. --follow on a connection id stops when the connection ends; on a file, at q or Ctrl-C.
    """
    directory = data_dir(data)
    try:
        start = parse_offset(at) if at is not None else None
        end = parse_offset(until) if until is not None else None
        source = resolve(target, data=directory, db=db_url(db, directory), whole_shell=whole_shell)
    except RecorderError as exc:
        raise fail(str(exc)) from None
    with contextlib.closing(source):
        code = _play(source, speed, idle_limit, start, end, pause_on_markers, follow)
    if code:
        raise typer.Exit(code)


def _play(
    source: Source,
    speed: float | None,
    idle_limit: float | None,
    start: float | None,
    end: float | None,
    pause_on_markers: bool,
    follow: bool,
) -> int:
    out = typer.get_binary_stream("stdout")
    tty_out = _isatty(sys.stdout)
    stdin_fd = _fileno(sys.stdin)
    paced = speed is not None or tty_out or follow
    interactive = paced and stdin_fd is not None and _isatty(sys.stdin)
    if pause_on_markers and not interactive:
        raise fail("--pause-on-markers needs a terminal on stdin and stdout (keys resume playback)")
    if follow and (source.path is None or end is not None):
        raise fail("--follow plays one connection or file as it grows; it takes no --until or --shell")
    tracker = AlternateTracker()

    def write(text: str) -> None:
        tracker.feed(text)
        out.write(text.encode("utf-8", "replace"))
        if paced:
            out.flush()

    terminal = TerminalKeys(stdin_fd) if interactive and stdin_fd is not None else None
    keys: KeySource = terminal if terminal is not None else SleepKeys(time.sleep)
    tail: CastTail | None = None
    events: Iterable[Event | None]
    try:
        player = Player(
            write,
            clock=time.monotonic,
            keys=keys,
            speed=speed or 1.0,
            idle_limit=idle_limit if idle_limit is not None else source.header.idle_time_limit,
            paced=paced,
            pause_on_markers=pause_on_markers,
        )
        if follow and source.path is not None:
            tail = CastTail(source.path)
            active = source.is_active if source.index is not None else (lambda: True)
            _, events = live_events(tail, active, start=start, clock=time.monotonic, sleep=time.sleep)
        else:
            _, clipped = clip_condensed(source.header, source.events(), start or 0.0, end)
            events = clipped
        if terminal is not None:
            with terminal.raw():
                result = _run(player, events, out, tracker, tty_out)
        else:
            with _signals_as_exceptions():
                result = _run(player, events, out, tracker, tty_out)
    except _Terminated as exc:
        return 128 + exc.signum
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except RecorderError as exc:
        raise fail(str(exc)) from None
    finally:
        if tail is not None:
            tail.close()
    if result.last_size is not None and tty_out:
        cols, rows = result.last_size
        typer.echo(f"recorder: note: the recording resized its terminal (last to {cols}x{rows})", err=True)
    if result.reason == "interrupt":
        if terminal is not None and terminal.signal is not None:
            return 128 + terminal.signal
        return EXIT_INTERRUPTED
    return 0


def register(app: typer.Typer) -> None:
    """Add the ``play`` command."""
    app.command("play")(play)
