"""Small helpers for talking to a runtime over plain websockets in tests."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect

from tests.procs import SESSION_HEADER, TEST_ARN, LocalShellClient

T = TypeVar("T")
#: Safety net for one test's network conversation (never asserted as a duration).
CONVERSATION_TIMEOUT = 30.0


def run(coro: Awaitable[T], timeout: float = CONVERSATION_TIMEOUT) -> T:
    """Run one async conversation to completion under a safety timeout."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def new_id() -> str:
    """A fresh session or shell id."""
    return str(uuid.uuid4())


def shell_url(base: str, shell_id: str | None = None, arn: str = TEST_ARN) -> str:
    """The shell endpoint URL on ``base``, built as the SDK builds it."""
    return LocalShellClient(base).shell_url(arn, None, shell_id)


async def open_ws(
    base: str,
    *,
    session_id: str | None = None,
    shell_id: str | None = None,
    **kwargs: Any,
) -> ClientConnection:
    """A plain websockets client on the shell endpoint."""
    headers = dict(kwargs.pop("additional_headers", {}) or {})
    if session_id is not None:
        headers[SESSION_HEADER] = session_id
    return await connect(shell_url(base, shell_id), additional_headers=headers, **kwargs)


async def recv_frame(ws: ClientConnection) -> tuple[int, bytes]:
    """The next message as (channel, payload)."""
    message = await ws.recv()
    assert isinstance(message, bytes), f"expected a binary message, got {message!r}"
    return message[0], message[1:]


async def read_until(
    ws: ClientConnection,
    done: Callable[[list[tuple[int, bytes]]], bool],
) -> list[tuple[int, bytes]]:
    """Collect frames until ``done(frames)`` is true."""
    frames: list[tuple[int, bytes]] = []
    while not done(frames):
        frames.append(await recv_frame(ws))
    return frames


def stdout_of(frames: list[tuple[int, bytes]]) -> bytes:
    """The STDOUT bytes among ``frames``."""
    return b"".join(p for c, p in frames if c == 0x01)


def statuses(frames: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    """The STATUS payloads among ``frames``, parsed."""
    return [json.loads(p) for c, p in frames if c == 0x03]


def output_contains(marker: bytes) -> Callable[[list[tuple[int, bytes]]], bool]:
    """A ``read_until`` condition: STDOUT so far contains ``marker``."""
    return lambda frames: marker in stdout_of(frames)


def has_termination(frames: list[tuple[int, bytes]]) -> bool:
    """A ``read_until`` condition: a termination STATUS (empty metadata) arrived."""
    return any(not s.get("metadata") for s in statuses(frames))


def output_matches(pattern: bytes) -> Callable[[list[tuple[int, bytes]]], bool]:
    """A ``read_until`` condition: STDOUT so far matches the regular expression ``pattern``."""
    regex = re.compile(pattern)
    return lambda frames: regex.search(stdout_of(frames)) is not None


async def shell_pid(ws: ClientConnection, *, then_prompt: bool = False) -> int:
    """Ask the shell on ``ws`` (bash or sh) for its pid; with ``then_prompt``, return once the
    next prompt's OSC 133 B mark is out too (bash has run its prompt hooks and sits at the prompt)."""
    await ws.send(b"\x00echo PID=$$.\r")
    done = rb"PID=(\d+)\.[\s\S]*\x1b\]133;B\x07" if then_prompt else rb"PID=(\d+)\."
    frames = await read_until(ws, output_matches(done))
    match = re.search(rb"PID=(\d+)\.", stdout_of(frames))
    assert match is not None
    return int(match.group(1))


class PtyOutput:
    """Collects a PtyProcess's output and notes its end of file."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = asyncio.Event()
        self.changed = asyncio.Event()

    def feed(self, data: bytes) -> None:
        self.data += data
        self.changed.set()

    def end(self) -> None:
        self.eof.set()
        self.changed.set()

    async def wait_for(self, pattern: bytes) -> re.Match[bytes]:
        while (match := re.search(pattern, self.data)) is None:
            assert not self.eof.is_set(), f"end of file before {pattern!r}: {bytes(self.data)!r}"
            self.changed.clear()
            await self.changed.wait()
        return match

    async def wait_count(self, marker: bytes, count: int) -> None:
        """Wait until ``marker`` occurs at least ``count`` times."""
        while self.data.count(marker) < count:
            assert not self.eof.is_set(), f"end of file before {count} x {marker!r}: {bytes(self.data)!r}"
            self.changed.clear()
            await self.changed.wait()
