"""A plain, grep-able transcript: each command with its offset, then its rendered output indented.

One pass, one emulator: the command tracker and the line tracker watch the same screen. An
output line belongs to the last command whose offset is not after the line's offset; the
shell's own lines (prompt plus command, bare prompts) are left out since the command header
says the same. A command's block is written once no line that could belong to it is still on
screen, so the transcript streams. Without commands, every output line is written with its offset.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

from recorder.cast.model import Event, Header
from recorder.replay.commands import Command, CommandTracker
from recorder.replay.driver import run
from recorder.replay.screen import Screen
from recorder.replay.text import LineTracker, TextLine

#: Indentation of output lines under their command.
INDENT = "        "


def format_offset(seconds: float) -> str:
    """``mm:ss`` (``h:mm:ss`` from one hour on)."""
    total = max(0, int(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _header(cmd: Command) -> str:
    status = f"  [exit {cmd.exit_code}]" if cmd.exit_code not in (None, 0) else ""
    return f"[{format_offset(cmd.offset)}] $ {cmd.text}{status}"


class _Blocks:
    """Commands and the output lines assigned to them, flushed in order."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.offsets: list[float] = []
        self.lines: list[list[TextLine]] = [[]]  # [0] is output before the first command
        self.flushed = 0  # blocks already written (block i+1 belongs to commands[i])
        self.held: list[TextLine] = []  # lines of the command still running (not known yet)

    def add_command(self, cmd: Command, running: float | None) -> None:
        self.commands.append(cmd)
        self.offsets.append(cmd.offset)
        self.lines.append([])
        held, self.held = self.held, []
        for line in held:
            self.add_line(line, running)

    def add_line(self, line: TextLine, running: float | None) -> None:
        if running is not None and line.offset >= running:
            self.held.append(line)
            return
        block = bisect.bisect_right(self.offsets, line.offset)
        # A line can only arrive for a block already written if it was held on screen longer
        # than the flush rule allows; it then goes with the earliest block still open.
        self.lines[max(block, self.flushed)].append(line)

    def flush(self, upto: int, skip: set[str]) -> Iterator[str]:
        while self.flushed < upto:
            block = self.flushed
            lines = sorted(self.lines[block], key=lambda ln: ln.offset)
            self.lines[block] = []
            kept = [ln for ln in lines if not ln.text or ln.text.rstrip() not in skip]
            # Blank rows at the edges of a block are screen padding, not output.
            while kept and not kept[0].text:
                kept.pop(0)
            while kept and not kept[-1].text:
                kept.pop()
            if block == 0:
                for ln in kept:
                    yield f"[{format_offset(ln.offset)}] {ln.text}"
            else:
                yield _header(self.commands[block - 1])
                for ln in kept:
                    yield INDENT + ln.text
            self.flushed += 1


def transcript(header: Header, events: Iterable[Event]) -> Iterator[str]:
    """Transcript lines (no newlines): ``[mm:ss] $ command`` then its output indented."""
    screen = Screen(header.width, header.height, collect_scrolled=True)
    commands = CommandTracker()
    lines = LineTracker(screen)
    blocks = _Blocks()
    for _ in run(screen, events, [commands, lines]):
        running = commands.open_offset
        for cmd in commands.take():
            blocks.add_command(cmd, running)
        for line in lines.take():
            blocks.add_line(line, running)
        if blocks.commands:
            # Block i is complete when command i is known, command i+1 started, and nothing
            # older than command i+1's offset is still waiting on screen.
            low = lines.low_water()
            nxt = commands.open_offset
            known = len(blocks.commands)
            upto = bisect.bisect_right(blocks.offsets, low)
            if nxt is not None and nxt <= low:
                upto = known + 1
            yield from blocks.flush(min(upto, known), commands.shell_lines)
    for cmd in commands.take():
        blocks.add_command(cmd, None)
    for line in lines.take():
        blocks.add_line(line, None)
    yield from blocks.flush(len(blocks.commands) + 1, commands.shell_lines)
