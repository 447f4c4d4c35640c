"""Helpers shared by the client tests: bounded asyncio runs, event collection, small edge servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve

from recorder.client import Ending, Output, ShellClient, ShellEvent, ShellTarget
from recorder.protocol import LOCAL_RUNTIME_ARN

T = TypeVar("T")
#: Safety net for one test's conversation (never asserted as a duration).
CONVERSATION_TIMEOUT = 30.0


def run(coro: Awaitable[T], timeout: float = CONVERSATION_TIMEOUT) -> T:
    """Run one async conversation to completion under a safety timeout."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def target(url: str, **kwargs: Any) -> ShellTarget:
    """A ShellTarget on ``url`` for the local runtime ARN."""
    return ShellTarget.create(url, LOCAL_RUNTIME_ARN, **kwargs)


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def collect_until(
    client: ShellClient, done: Callable[[list[ShellEvent]], bool] | None = None
) -> tuple[list[ShellEvent], bytes]:
    """Events until ``done(events)`` is true (or the connection ends), and the STDOUT bytes among them."""
    events: list[ShellEvent] = []
    async for event in client.events():
        events.append(event)
        if done is not None and done(events):
            break
    return events, stdout(events)


def stdout(events: list[ShellEvent]) -> bytes:
    """The STDOUT bytes among ``events``."""
    return b"".join(e.data for e in events if isinstance(e, Output))


def output_has(needle: bytes) -> Callable[[list[ShellEvent]], bool]:
    """A ``done`` predicate: the STDOUT so far contains ``needle``."""
    return lambda events: needle in stdout(events)


async def drain(client: ShellClient) -> Ending:
    """Read events until the connection ends; return the ending."""
    async for _ in client.events():
        pass
    ending = client.ending
    assert ending is not None
    return ending


@contextlib.asynccontextmanager
async def edge_server(
    handler: Callable[[ServerConnection], Awaitable[None]], **kwargs: Any
) -> AsyncIterator[str]:
    """A small websockets server on loopback playing a scripted server role; yields its ws:// URL."""
    server: Server = await serve(handler, "127.0.0.1", 0, **kwargs)
    try:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()
