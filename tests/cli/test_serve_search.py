"""`recorder serve` indexes every finished connection for search: real runtime, proxy and shell.

A session is typed through the proxy the way a person types (corrections with Backspace, history
recall with the up arrow, a failing command); once the connection ends, the proxy's post-processing
hook indexes it and `recorder search` finds each command with its exit code, the typed input,
and a word the shell printed mid-session.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from recorder.protocol import SESSION_HEADER, Channel, RuntimeArn, ShellRequest, decode, encode
from tests.procs import TEST_ARN, run_recorder, wait_until
from tests.proxy.conftest import Stack, stack

pytestmark = pytest.mark.timeout(90)

#: Safety nets only (never asserted as durations).
OUTPUT_TIMEOUT = 15.0
INDEX_TIMEOUT = 30.0


class Terminal:
    """A client that types into a proxied shell and waits for what the shell prints."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.output = ""
        self.mark = 0

    async def read_until(self, needle: str, start: int = 0) -> int:
        """Read until ``needle`` appears in the output after ``start``; return the end of it."""
        deadline = time.monotonic() + OUTPUT_TIMEOUT
        while (found := self.output.find(needle, start)) < 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {needle!r} in the shell output: {self.output[-500:]!r}")
            message = await asyncio.wait_for(self.ws.recv(), remaining)
            assert isinstance(message, bytes)
            frame = decode(message)
            if frame.channel == Channel.STDOUT:
                self.output += frame.payload.decode("utf-8", "replace")
        return found + len(needle)

    async def prompt(self) -> None:
        """Wait for the next prompt (the runtime's bash marks it with OSC 133;B)."""
        self.mark = await self.read_until("\x1b]133;B\x07", self.mark)

    async def type(self, *chunks: str) -> None:
        """Send keys in separate messages, as a person types them."""
        for chunk in chunks:
            await self.ws.send(encode(Channel.STDIN, chunk.encode()))
            await asyncio.sleep(0.05)


async def _session(url: str) -> None:
    req = ShellRequest(RuntimeArn.parse(TEST_ARN), None, uuid.uuid4().hex, str(uuid.uuid4()))
    async with connect(url + req.target(), additional_headers={SESSION_HEADER: req.session_id or ""}) as ws:
        term = Terminal(ws)
        await term.prompt()
        # "echo zebra", five Backspaces, then "quokka": the shell runs "echo quokka".
        await term.type("echo ", "zebra", "\x7f" * 5, "quokka", "\r")
        await term.prompt()
        await term.type("ls /nonexis", "tent\r")
        await term.prompt()
        # Up arrow recalls "ls /nonexistent"; Enter runs it again.
        await term.type("\x1b[A", "\r")
        await term.prompt()
        # The word is only in the output: the shell computes half of it.
        await term.type("echo xyzzy$((6*7))\r")
        await term.prompt()
        if shutil.which("less"):
            # A full-screen program: what is typed inside it (a search for "kiwi") is not a command.
            await term.type("seq 1 500 | less\r")
            term.mark = await term.read_until("\x1b[?1049h", term.mark)
            await term.type("/kiwi\r", "j", "q")
            await term.prompt()
        await term.type("exit 0\r")
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass


def _search(s: Stack, *args: str) -> list[dict[str, object]]:
    done = run_recorder("search", *args, "--json", "--data-dir", str(s.data_dir), "--db", s.db_url)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_finished_connection_is_searchable_with_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty HOME: the user's own ~/.bashrc (slow prompt hooks, say) must not shape the shell.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with stack(tmp_path) as s:
        asyncio.run(_session(s.url))
        (row,) = s.finished()
        wait_until(lambda: s.index.indexed(row.id) is not None, INDEX_TIMEOUT, "the post-processing hook")

        commands = _search(s, "--in", "commands", "ls nonexistent")
        assert [(h["id"], h["text"], h["exit_code"]) for h in commands] == [
            (row.id, "ls /nonexistent", 2),
            (row.id, "ls /nonexistent", 2),
        ]
        (echo,) = _search(s, "--in", "commands", "quokka")
        assert (echo["text"], echo["exit_code"]) == ("echo quokka", 0)
        assert _search(s, "--in", "commands", "zebra") == []
        if shutil.which("less"):
            (pager,) = _search(s, "--in", "commands", "less")
            assert (pager["text"], pager["exit_code"]) == ("seq 1 500 | less", 0)
            assert _search(s, "--in", "commands", "kiwi") == []

        # Offsets are when Enter was sent: in typing order, within the session.
        offsets = [echo["offset"], commands[0]["offset"], commands[1]["offset"]]
        assert offsets == sorted(offsets) and offsets[0] > 0
        assert row.duration is not None and offsets[-1] < row.duration

        (typed,) = _search(s, "--in", "input", "quokka")
        assert typed["text"] == "echo quokka"

        output = _search(s, "--in", "output", "xyzzy42")
        assert [h["text"] for h in output] == ["xyzzy42"]
        assert float(str(output[0]["offset"])) >= float(str(commands[1]["offset"]))
        assert _search(s, "--in", "commands", "xyzzy42") == []

        # The hit's replay command starts there: what follows the recalled `ls` is on the screen.
        play = str(commands[1]["play"]).split()
        assert play[:2] == ["recorder", "play"]
        replay = run_recorder(*play[1:], "--data-dir", str(s.data_dir), "--db", s.db_url)
        assert replay.returncode == 0, replay.stderr
        assert "xyzzy42" in replay.stdout

        shown = run_recorder("show", str(row.id), "--data-dir", str(s.data_dir), "--db", s.db_url)
        assert shown.returncode == 0, shown.stderr
        assert "ls /nonexistent" in shown.stdout and "echo quokka" in shown.stdout
