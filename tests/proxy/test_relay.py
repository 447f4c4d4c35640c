"""The relay in-process over real loopback WebSockets: the fast hop and the recv/send path agree.

The client and the upstream are plain ``websockets`` peers; between them a ``serve`` handler
relays with the proxy's own connection classes, as ``recorder serve`` does. Whatever path each
message takes (the hop inside the receive callback, or the pump's recv and send once the hop
declines), the other side must get every message, unchanged, of the same type and in order,
and the recording must hold every one.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from recorder.cast.reader import open_cast
from recorder.protocol import Channel, encode
from recorder.proxy.hop import HopClientConnection, HopServerConnection
from recorder.proxy.relay import Outcome, Relay
from recorder.proxy.tap import RecordingTap, context_header
from tests.procs import until

Message = bytes | str
#: Socket buffer sizes between the relay and the upstream.
SOCKET_BUFFER = 64 * 1024


@dataclass
class Rig:
    """A relay under test, the messages its upstream got, and how it ended."""

    client: ClientConnection = field(init=False)
    upstream_got: list[Message] = field(default_factory=list)
    relays: list[Relay] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    #: Set to let the upstream start reading (it reads at once unless a test clears it first).
    upstream_reads: asyncio.Event = field(default_factory=asyncio.Event)
    #: The upstream's end of its connection with the relay.
    upstream_side: list[ServerConnection] = field(default_factory=list)


@asynccontextmanager
async def relayed(
    path: Path, *, max_buffer: int = 8 << 20, flush_interval: float = 0.05
) -> AsyncIterator[Rig]:
    """A client connected through a relay (with a tap writing ``path``) to a recording upstream."""
    rig = Rig()
    upstream_ready = asyncio.Event()

    async def upstream_handler(ws: ServerConnection) -> None:
        rig.upstream_side.append(ws)
        try:
            while True:
                await rig.upstream_reads.wait()
                message = await ws.recv()
                rig.upstream_got.append(message)
                # Echo binary messages back, so the other direction is relayed as well.
                if isinstance(message, bytes):
                    await ws.send(message)
        except ConnectionClosed:
            pass

    async def relay_handler(client: ServerConnection) -> None:
        assert isinstance(client, HopServerConnection)
        upstream = await connect(
            upstream_url,
            create_connection=HopClientConnection,
            max_size=None,
            compression=None,
            sock=_small_socket(upstream_addr),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        header = context_header(2, 80, 24, 1_700_000_000, {"shell_id": "s"})
        tap = RecordingTap(fd, header, start=0.0, max_buffer=max_buffer, flush_interval=flush_interval)
        tap.begin()
        relay = Relay(client, upstream, tap)
        rig.relays.append(relay)
        upstream_ready.set()
        try:
            rig.outcomes.append(await relay.run())
        finally:
            await tap.close()

    listener = _small_socket()
    up = await serve(upstream_handler, sock=listener, max_size=None, max_queue=1, compression=None)
    upstream_addr = listener.getsockname()
    upstream_url = f"ws://127.0.0.1:{upstream_addr[1]}"
    proxy = await serve(
        relay_handler, "127.0.0.1", 0, create_connection=HopServerConnection, max_size=None, compression=None
    )
    proxy_url = f"ws://127.0.0.1:{next(iter(proxy.sockets)).getsockname()[1]}"
    try:
        async with connect(proxy_url, max_size=None, compression=None) as client:
            rig.client = client
            rig.upstream_reads.set()
            await asyncio.wait_for(upstream_ready.wait(), 10)
            yield rig
        await until(lambda: bool(rig.outcomes), 10, "the relay to end")
    finally:
        proxy.close()
        up.close()
        await asyncio.wait_for(asyncio.gather(proxy.wait_closed(), up.wait_closed()), 30)


def _small_socket(connect_to: tuple[str, int] | None = None) -> socket.socket:
    """A loopback TCP socket with small buffers, set before it connects or listens (loopback's
    grow to tens of MB, which would hide a reader that stopped)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    if connect_to is None:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
    else:
        sock.connect(connect_to)
    sock.setblocking(False)
    return sock


async def _echoes(client: ClientConnection, count: int) -> list[bytes]:
    got: list[bytes] = []
    while len(got) < count:
        message = await asyncio.wait_for(client.recv(), 30)
        assert isinstance(message, bytes)
        got.append(message)
    return got


def _recorded_input(path: Path) -> str:
    with open_cast(path) as reader:
        return "".join(e.data for e in reader.events() if e.code == "i")


def _stdin(n: int, size: int = 16) -> bytes:
    return encode(Channel.STDIN, f"{n:06d}".encode().ljust(size, b"."))


async def test_typed_keys_take_the_fast_hop_both_ways_and_all_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "keys.cast"
    sent = [_stdin(n) for n in range(300)]
    async with relayed(path) as rig:
        for message in sent:
            await rig.client.send(message)
        assert await _echoes(rig.client, len(sent)) == sent
    assert rig.upstream_got == sent
    (relay,) = rig.relays
    # Every message waited for nothing, so all of them went through the hop, both ways.
    assert relay.hopped == [len(sent), len(sent)]
    assert _recorded_input(path) == "".join(m[1:].decode() for m in sent)


async def test_text_and_fragmented_messages_leave_the_hop_and_arrive_unchanged_in_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mixed.cast"
    fragments = [encode(Channel.STDIN, b"frag"), b"men", b"ted"]  # one message in three frames
    async with relayed(path) as rig:
        # Each time a round trip first: the relay is idle, the hop attached, when the next comes.
        await rig.client.send(_stdin(0))
        assert await _echoes(rig.client, 1) == [_stdin(0)]
        await rig.client.send("a text message")  # not echoed by the upstream
        await rig.client.send(_stdin(1))
        assert await _echoes(rig.client, 1) == [_stdin(1)]
        await rig.client.send(fragments)
        assert await _echoes(rig.client, 1) == [encode(Channel.STDIN, b"fragmented")]
        await rig.client.send(_stdin(2))
        assert await _echoes(rig.client, 1) == [_stdin(2)]
        await rig.client.send("another text message")
        await rig.client.send(_stdin(99))
        assert await _echoes(rig.client, 1) == [_stdin(99)]
    expected: list[Message] = [
        _stdin(0),
        "a text message",
        _stdin(1),
        encode(Channel.STDIN, b"fragmented"),
        _stdin(2),
        "another text message",
        _stdin(99),
    ]
    assert rig.upstream_got == expected
    (relay,) = rig.relays
    # The keys that came to an idle relay (0 and 2) took the hop, and so did every echo.
    assert relay.hopped[0] >= 2 and relay.hopped[1] == 5, relay.hopped
    assert _recorded_input(path) == "".join(m[1:].decode() for m in expected if isinstance(m, bytes))


async def test_a_full_recording_buffer_sends_messages_the_slow_way_without_loss_or_reordering(
    tmp_path: Path,
) -> None:
    path = tmp_path / "full.cast"
    sent = [_stdin(n, 1000) for n in range(400)]
    # Room for two messages, written out every 20 ms: most messages find the buffer full.
    async with relayed(path, max_buffer=2 * (1001 + 64), flush_interval=0.02) as rig:
        for message in sent:
            await rig.client.send(message)
        assert await _echoes(rig.client, len(sent)) == sent
    assert rig.upstream_got == sent
    (relay,) = rig.relays
    assert 0 < relay.hopped[0] < len(sent), relay.hopped
    assert _recorded_input(path) == "".join(m[1:].decode() for m in sent)


async def test_a_slow_reader_upstream_makes_the_hop_wait_like_send_does(tmp_path: Path) -> None:
    path = tmp_path / "slow.cast"
    sent = [_stdin(n, 60_000) for n in range(70)]  # 4.2 MB, far more than the upstream buffers
    async with relayed(path) as rig:
        rig.upstream_reads.clear()  # the upstream stops reading for a while
        echoes = asyncio.create_task(_echoes(rig.client, len(sent)))
        sender = asyncio.create_task(_send_all(rig.client, sent))
        try:

            def full() -> bool:
                return bool(rig.relays) and rig.relays[0].upstream.paused

            await until(full, 10, "the relay's writes to the upstream to fill its buffer")
            (relay,) = rig.relays
        finally:
            rig.upstream_reads.set()
        await asyncio.wait_for(sender, 30)
        assert await asyncio.wait_for(echoes, 30) == sent
    assert rig.upstream_got == sent
    assert relay.hopped[0] < len(sent), "the hop wrote to an upstream that was not reading"
    assert _recorded_input(path) == "".join(m[1:].decode() for m in sent)


async def _send_all(ws: ClientConnection, messages: list[bytes]) -> None:
    for message in messages:
        await ws.send(message)


@pytest.mark.parametrize("closer", ["client", "upstream"])
async def test_a_close_during_fast_relaying_ends_the_relay_with_that_sides_code(
    tmp_path: Path, closer: str
) -> None:
    path = tmp_path / "close.cast"
    async with relayed(path) as rig:
        await rig.client.send(_stdin(1))
        assert await _echoes(rig.client, 1) == [_stdin(1)]
        (relay,) = rig.relays
        assert relay.hopped == [1, 1]
        if closer == "client":
            await rig.client.close(4321, "done here")
        else:
            await rig.upstream_side[0].close(4322, "upstream done")
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(rig.client.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4322
    (outcome,) = rig.outcomes
    assert outcome.close_code == (4321 if closer == "client" else 4322)
