"""Replay benchmarks: emulator feed speed (avt vs pyte), output_lines and command extraction
throughput, and seek time with and without snapshots. Prints the figures.

    .venv/bin/python -m bench.bench_replay [--seek-mb 50] [--moments 50]

pyte is measured only if it is importable (it is not a dependency: pip install pyte to compare).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import avt

from recorder.cast.model import INPUT, OUTPUT, Event, Header
from recorder.replay.commands import extract_commands
from recorder.replay.render import Snapshots, screen_at
from recorder.replay.text import output_lines

CORPUS_BIG = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "asciicast" / "server__big-v3.cast"
CHUNK = 4096


def ls_output(limit: int = 3_000_000) -> str:
    """Coloured ``ls -lR /usr`` output (CRLF line ends, as a terminal receives it)."""
    if shutil.which("ls"):
        out = subprocess.run(
            ["ls", "-lR", "--color=always", "/usr"], capture_output=True, check=False, timeout=120
        ).stdout[:limit]
        text = out.decode("utf-8", "replace").replace("\n", "\r\n")
        if len(text) > limit // 2:
            return text
    return "".join(
        f"\x1b[01;34mdir{i}\x1b[0m  file{i}.txt  \x1b[32mexec{i}\x1b[0m\r\n" for i in range(limit // 40)
    )


def fullscreen_redraws(size: int = 3_000_000, cols: int = 120, rows: int = 40) -> str:
    """vim/top-like output: alternate screen, cursor addressing, colours, scroll regions."""
    rnd = random.Random(1)
    parts = ["\x1b[?1049h"]
    total = 0
    frame = 0
    while total < size:
        frame += 1
        piece = [f"\x1b[H\x1b[2J\x1b[1;{rows - 1}r"]
        for r in range(1, rows):
            word = "".join(rnd.choice("abcdefghij ") for _ in range(cols - 10))
            piece.append(f"\x1b[{r};1H\x1b[38;5;{(r * 7) % 256}m{r:4d}\x1b[0m {word}")
        piece.append(f"\x1b[{rows};1H\x1b[7m-- INSERT -- frame {frame}\x1b[0m\x1b[K")
        text = "".join(piece)
        parts.append(text)
        total += len(text)
    parts.append("\x1b[?1049l")
    return "".join(parts)


def corpus_big() -> tuple[Header, list[Event]] | None:
    """The 3 MB corpus recording, if the corpus and the reader are there."""
    if not CORPUS_BIG.is_file():
        return None
    from recorder.cast.reader import open_cast

    with open_cast(CORPUS_BIG) as reader:
        return reader.header, list(reader.events())


def as_events(text: str, step: float = 0.01) -> list[Event]:
    """Output split into CHUNK-sized events, ``step`` seconds apart."""
    return [Event(i * step, OUTPUT, text[j : j + CHUNK]) for i, j in enumerate(range(0, len(text), CHUNK))]


def mb(events: list[Event]) -> float:
    """Megabytes (UTF-8) of output in the events."""
    return sum(len(ev.data.encode()) for ev in events if ev.code == OUTPUT) / 1e6


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def feed_avt(events: list[Event], cols: int, rows: int) -> None:
    """Feed output into a bare avt emulator."""
    vt = avt.Vt(cols, rows, scrollback_limit=0)
    for ev in events:
        if ev.code == OUTPUT:
            vt.feed_str(ev.data)


def feed_pyte(events: list[Event], cols: int, rows: int) -> None:
    """Feed output into pyte (if installed)."""
    import pyte  # type: ignore[import-untyped]

    screen = pyte.Screen(cols, rows)
    stream = pyte.Stream(screen)
    for ev in events:
        if ev.code == OUTPUT:
            stream.feed(ev.data)


def shell_session(repeats: int = 3000) -> list[Event]:
    """A synthetic typed session with OSC 133 marks: prompt, keys, echo, output, exit status."""
    events: list[Event] = []
    t = 0.0
    body = "".join(f"line {i} of output with some words\r\n" for i in range(20))
    for n in range(repeats):
        events.append(Event(t, OUTPUT, "\x1b]133;A\x07user@host:~$ \x1b]133;B\x07"))
        for ch in f"cat file{n}.txt":
            t += 0.001
            events.append(Event(t, INPUT, ch))
            events.append(Event(t, OUTPUT, ch))
        t += 0.001
        events.append(Event(t, INPUT, "\r"))
        events.append(Event(t, OUTPUT, "\r\n\x1b]133;C\x07" + body + "\x1b]133;D;0\x07"))
    return events


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_replay")
    parser.add_argument("--seek-mb", type=int, default=50, help="size of the generated seek recording")
    parser.add_argument("--moments", type=int, default=50, help="random moments to seek to")
    args = parser.parse_args()

    try:
        import pyte  # noqa: F401

        have_pyte = True
    except ImportError:
        have_pyte = False

    sets: list[tuple[str, Header, list[Event]]] = [
        ("ls -lR --color /usr", Header(2, 120, 40), as_events(ls_output())),
        ("full-screen redraws", Header(2, 120, 40), as_events(fullscreen_redraws())),
    ]
    big = corpus_big()
    if big is not None:
        sets.append(("corpus server__big-v3", big[0], big[1]))
    else:
        print("corpus server__big-v3.cast not found: skipped")
    sets.append(("typed shell session (OSC 133)", Header(2, 120, 40), shell_session()))

    print(f"{'data':32} {'MB':>6} {'avt MB/s':>9} {'pyte MB/s':>9} {'lines MB/s':>10} {'cmds MB/s':>9}")
    for name, header, events in sets:
        size = mb(events)
        a = size / timed(lambda h=header, e=events: feed_avt(e, h.width, h.height))
        p = (
            size / timed(lambda h=header, e=events: feed_pyte(e, h.width, h.height))
            if have_pyte
            else float("nan")
        )
        lines = size / timed(lambda h=header, e=events: sum(1 for _ in output_lines(h, e)))
        cmds = size / timed(lambda h=header, e=events: extract_commands(h, e))
        print(f"{name:32} {size:6.2f} {a:9.1f} {p:9.2f} {lines:10.1f} {cmds:9.1f}")

    figures = seek(args.seek_mb, args.moments)
    print(f"\nseek: generated recording {figures['seek_recording_mb']:.1f} MB")
    print(f"snapshots built in {figures['seek_snapshot_build_s']:.2f} s (one pass)")
    print(f"seek median over {args.moments} moments:")
    print(f"  without snapshots {figures['seek_without_snapshots_median_ms']:.1f} ms")
    print(f"  with snapshots    {figures['seek_median_ms']:.2f} ms")


def seek(seek_mb: int = 100, moments: int = 50) -> dict[str, float]:
    """Screen at random moments of a generated ``seek_mb`` MB recording, with and without snapshots."""
    base = ls_output()
    header = Header(2, 120, 40)
    reps = max(1, seek_mb * 1_000_000 // len(base.encode()))
    events = as_events(base * reps)
    end = events[-1].time
    build = timed(lambda: Snapshots(header, events))
    snaps = Snapshots(header, events)
    rnd = random.Random(7)
    ats = [rnd.uniform(0, end) for _ in range(moments)]
    with_snaps = [timed(lambda at=at: snaps.screen_at(at)) for at in ats]
    without = [timed(lambda at=at: screen_at(header, events, at)) for at in ats[: max(5, moments // 10)]]
    return {
        "seek_recording_mb": mb(events),
        "seek_snapshot_build_s": build,
        "seek_median_ms": statistics.median(with_snaps) * 1000,
        "seek_p99_ms": sorted(with_snaps)[min(len(with_snaps) - 1, int(0.99 * len(with_snaps)))] * 1000,
        "seek_without_snapshots_median_ms": statistics.median(without) * 1000,
    }


if __name__ == "__main__":
    main()
