"""A tiny recorder of real shell sessions: bash in a real PTY, typed into with timing.

Output read from the PTY and keys written to it become asciicast events with their own
timestamps, the same stream the proxy's tap produces. The marks variant sets up OSC 133 exactly
like the runtime: PS0 emits ``ESC]133;C BEL``, PROMPT_COMMAND emits ``ESC]133;D;$? BEL`` then
``ESC]133;A BEL``, and PS1 ends with ``ESC]133;B BEL``.
"""

from __future__ import annotations

import codecs
import os
import re
import select
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ptyprocess import PtyProcess  # type: ignore[import-untyped]

from recorder.cast.model import INPUT, OUTPUT, Event, Header

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("RECORDER_CORPUS_DIR", REPO.parent / "shared" / "corpus" / "asciicast"))

#: Safety nets only (never asserted as durations).
PROMPT_TIMEOUT = 10.0
KEY_DELAY = 0.02
#: xterm's switch to the alternate screen: a full-screen program (less, vim) has started.
ALT_SCREEN = "\x1b[?1049h"

MARKS_ENV = {
    "PS0": r"\e]133;C\a",
    "PROMPT_COMMAND": r'printf "\033]133;D;%s\007\033]133;A\007" "$?"',
    "PS1": r"bash$ \[\e]133;B\a\]",
}
_ESCAPES = re.compile(r"\x1b\][^\x07]*\x07|\x1b\[[0-9;?]*[a-zA-Z]|\x1b[()][0-9A-B]|\x1b.")


@dataclass
class Recording:
    """A recorded session: header and events (absolute times)."""

    header: Header
    events: list[Event]

    def time_of_output(self, needle: str) -> float:
        """Time of the first output event containing ``needle``."""
        for ev in self.events:
            if ev.code == OUTPUT and needle in ev.data:
                return ev.time
        raise AssertionError(f"{needle!r} never printed")

    def output_until(self, at: float) -> str:
        """All output text up to and including time ``at``."""
        return "".join(ev.data for ev in self.events if ev.code == OUTPUT and ev.time <= at)


class BashSession:
    """bash --noprofile --norc in a PTY; every byte in or out becomes an event."""

    def __init__(self, workdir: Path, *, marks: bool, cols: int = 80, rows: int = 24) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "INPUTRC": "/dev/null",
            "HISTFILE": str(workdir / ".bash_history"),
        }
        if marks:
            env.update(MARKS_ENV)
        self.marks = marks
        self.header = Header(version=2, width=cols, height=rows)
        self.events: list[Event] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._t0 = time.monotonic()
        self._proc = PtyProcess.spawn(
            ["bash", "--noprofile", "--norc"], env=env, cwd=str(workdir), dimensions=(rows, cols)
        )
        self._since = 0  # index in events where the last wait started
        self.wait_prompt()

    def _now(self) -> float:
        return round(time.monotonic() - self._t0, 6)

    def pump(self, duration: float) -> None:
        """Read output for ``duration`` seconds."""
        deadline = time.monotonic() + duration
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self._proc.fd], [], [], left)
            if not ready:
                return
            try:
                data = os.read(self._proc.fd, 65536)
            except OSError:
                return
            if not data:
                return
            text = self._decoder.decode(data)
            if text:
                self.events.append(Event(self._now(), OUTPUT, text))

    def _output_since(self, start: int) -> str:
        return "".join(ev.data for ev in self.events[start:] if ev.code == OUTPUT)

    def wait_prompt(self) -> None:
        """Read output until a new prompt is shown (safety timeout)."""
        start = self._since
        deadline = time.monotonic() + PROMPT_TIMEOUT
        while time.monotonic() < deadline:
            self.pump(0.05)
            out = self._output_since(start)
            if self.marks:
                if "\x1b]133;B\x07" in out:
                    break
            elif _ESCAPES.sub("", out).endswith(("$ ", "# ")):
                break
        else:
            raise AssertionError(f"no prompt within {PROMPT_TIMEOUT}s; output: {out[-300:]!r}")
        self.pump(0.05)
        self._since = len(self.events)

    def wait_output(self, needle: str) -> None:
        """Read output until ``needle`` has appeared since the last key sent (safety timeout)."""
        deadline = time.monotonic() + PROMPT_TIMEOUT
        while needle not in self._output_since(self._since):
            if time.monotonic() >= deadline:
                raise AssertionError(f"no {needle!r} within {PROMPT_TIMEOUT}s")
            self.pump(0.05)

    def send(self, data: str) -> None:
        """Write keys to the shell in one input event."""
        self._since = len(self.events)
        os.write(self._proc.fd, data.encode())
        self.events.append(Event(self._now(), INPUT, data))

    def type(self, keys: str) -> None:
        """Type keys one at a time, reading output in between."""
        for key in keys:
            self.send(key)
            self.pump(KEY_DELAY)

    def run(self, line: str) -> None:
        """Type a line, press Enter and wait for the next prompt."""
        self.type(line)
        self.enter()

    def enter(self) -> None:
        """Press Enter and wait for the next prompt."""
        self.send("\r")
        self.wait_prompt()

    def close(self) -> Recording:
        """Exit the shell and return the recording."""
        if self._proc.isalive():
            self.send("exit\r")
            self.pump(0.3)
            self._proc.terminate(force=True)
        return Recording(self.header, list(self.events))


@pytest.fixture
def bash_session(tmp_path: Path) -> Iterator[type[BashSession]]:
    """Factory: ``bash_session(tmp_path, marks=...)``; every session started is closed at the end."""
    started: list[BashSession] = []

    class _Tracked(BashSession):
        def __init__(self, workdir: Path, *, marks: bool, cols: int = 80, rows: int = 24) -> None:
            super().__init__(workdir, marks=marks, cols=cols, rows=rows)
            started.append(self)

    yield _Tracked
    for s in started:
        if s._proc.isalive():
            s._proc.terminate(force=True)


def require(program: str) -> str:
    """Path of ``program``, or skip the test."""
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed")
    return path


@pytest.fixture
def corpus() -> Path:
    """The asciicast corpus folder; skips when it is not beside the repository."""
    if not (CORPUS / "README.md").is_file():
        pytest.skip(f"asciicast corpus not found at {CORPUS} (set RECORDER_CORPUS_DIR or add ../shared)")
    return CORPUS


@dataclass
class Scripted:
    """A recorded scripted session and the moments the tests look at."""

    recording: Recording
    marks: bool
    has_less: bool
    #: Output time of the line printed by ``echo zebra-unicorn``.
    zebra_time: float
    #: Time just after the coloured printf's output arrived.
    red_time: float


def record_scripted(workdir: Path, *, marks: bool) -> Scripted:
    """Run the standard scenario (editing, history, completion, failures, less) and record it."""
    (workdir / "alpha-file.txt").write_text("alpha contents\n")
    s = BashSession(workdir, marks=marks)
    try:
        s.run("echo helo\x7f\x7flo world")  # backspaces correct "helo" to "he" + "lo world"
        s.run("ls /nonexistent")
        s.run("false")
        s.send("\x1b[A")  # up arrow recalls "false"
        s.pump(0.2)
        s.enter()
        s.type("ec\t")  # completes to "echo "
        s.pump(0.2)
        s.run("tabbed")
        s.run(r"printf '\e[31mred\e[0m\n'")
        red_time = s.events[-1].time
        s.run("echo zebra-unicorn")
        s.run("seq 1 12")
        has_less = Path("/usr/bin/less").is_file()
        if has_less:
            s.type("less alpha-file.txt")
            s.send("\r")
            s.wait_output(ALT_SCREEN)  # less is up: the keys below are its, not the shell's
            s.pump(0.2)
            for key in (" ", "/alpha", "\r", "j"):
                s.send(key)
                s.pump(0.2)
            s.send("q")
            s.wait_prompt()
        s.run("echo done")
        rec = s.close()
    finally:
        if s._proc.isalive():
            s._proc.terminate(force=True)
    return Scripted(rec, marks, has_less, rec.time_of_output("zebra-unicorn\r\n"), red_time)


@pytest.fixture(scope="session", params=[False, True], ids=["heuristic", "osc133"])
def scripted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Scripted:
    """The scripted session, recorded once per variant (without and with OSC 133 marks)."""
    marks = bool(request.param)
    return record_scripted(tmp_path_factory.mktemp("bash"), marks=marks)
