"""Shell behaviour seen from inside the process: backpressure, the ring buffer size, the shell limit.

These run the Runtime in-process (real PTYs, real loopback WebSockets) so the tests can look at a
shell's state, which a separate process would hide.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from recorder.protocol import Channel, status
from recorder.protocol.status import Confirmation, Termination
from recorder.runtime import OUTPUT_HIGH_WATER, Attachment, Runtime, RuntimeConfig, Shell
from recorder.runtime.ptyproc import COALESCE_SIZE
from tests.procs import SESSION_HEADER
from tests.runtime.wire import new_id, read_until, recv_frame, run, shell_url, statuses, stdout_of

POLL = 0.01


async def _eventually(predicate: object, what: str, timeout: float = 15.0) -> None:
    """Poll ``predicate()`` on the loop until true (a safety-net timeout, not a measurement)."""
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(POLL)
    assert predicate(), what


async def _connect(rt: Runtime, session_id: str, shell_id: str) -> ClientConnection:
    return await connect(shell_url(rt.url, shell_id), additional_headers={SESSION_HEADER: session_id})


async def _shell(rt: Runtime, session_id: str, shell_id: str) -> Shell:
    await _eventually(lambda: rt.find_shell(session_id, shell_id) is not None, "the shell to exist")
    shell = rt.find_shell(session_id, shell_id)
    assert shell is not None
    return shell


def _runtime(**settings: Any) -> Runtime:
    return Runtime(RuntimeConfig(port=0, **settings))


def test_a_slow_client_stops_the_pty_being_read_and_memory_stays_bounded() -> None:
    async def scenario() -> tuple[int, int]:
        async with _runtime(shell=["yes", "a line of output that never ends"]) as rt:
            session_id = new_id()
            # A client that reads nothing: once its queue and the socket buffers are full, sends block.
            ws = await connect(
                shell_url(rt.url, "firehose"), additional_headers={SESSION_HEADER: session_id}, max_queue=2
            )
            shell = await _shell(rt, session_id, "firehose")
            await _eventually(lambda: not shell.reading, "backpressure to pause reading")
            paused_with = shell.pending_output
            # Paused stays paused while the client reads nothing, and the queue does not grow.
            for _ in range(20):
                await asyncio.sleep(POLL)
                assert not shell.reading
                assert shell.pending_output == paused_with

            # Reading again drains the queue below the low-water mark, and the PTY is read again.
            async def consume() -> None:
                with contextlib.suppress(ConnectionClosed):
                    while True:
                        await ws.recv()

            consumer = asyncio.get_running_loop().create_task(consume())
            await _eventually(lambda: shell.resumes >= 1, "reading to resume")
            await ws.close()  # while the consumer still reads, so the closing handshake gets through
            consumer.cancel()
            return paused_with, shell.pauses

    paused_with, pauses = run(scenario())
    assert OUTPUT_HIGH_WATER <= paused_with < OUTPUT_HIGH_WATER + COALESCE_SIZE
    assert pauses >= 1


def test_the_ring_buffer_size_is_configurable() -> None:
    capacity = 1000

    async def scenario() -> list[tuple[int, bytes]]:
        async with _runtime(shell=["sh"], buffer_size=capacity) as rt:
            session_id = new_id()
            async with await _connect(rt, session_id, "small") as ws:
                await read_until(ws, lambda f: len(statuses(f)) == 1)
            shell = await _shell(rt, session_id, "small")
            await _eventually(lambda: not shell.attached, "the shell to detach")
            # While detached, 5000 bytes of output: only the last 1000 can be kept.
            await shell.write(b"printf '%05000d' 0; echo; echo END-$((1+1))\n")
            await _eventually(lambda: shell.buffered == capacity, "the ring buffer to fill")
            async with await _connect(rt, session_id, "small") as ws:
                return await read_until(ws, lambda f: len(statuses(f)) == 2)

    frames = run(scenario())
    first, dropped = (status.parse(p) for c, p in frames if c == 0x03)
    assert first == Confirmation(shell_id="small", reconnected=True)
    assert isinstance(dropped, Confirmation) and dropped.bytes_dropped is not None
    assert len(stdout_of(frames)) == capacity
    assert dropped.bytes_dropped > 5000 - capacity


def test_the_attached_shell_limit_is_configurable() -> None:
    async def scenario() -> int:
        async with _runtime(shell=["sh"], max_attached_shells=2) as rt:
            session_id = new_id()
            first = await _connect(rt, session_id, "one")
            second = await _connect(rt, session_id, "two")
            with pytest.raises(InvalidStatus) as info:
                await _connect(rt, session_id, "three")
            await first.close()
            await second.close()
            return info.value.response.status_code

    assert run(scenario()) == 429


def test_output_a_closed_connection_could_not_take_is_handed_back_in_order() -> None:
    async def scenario() -> tuple[bytes, int]:
        handed_back: asyncio.Future[tuple[bytes, int]] = asyncio.get_running_loop().create_future()

        async def handler(conn: ServerConnection) -> None:
            await conn.wait_closed()
            att = Attachment(conn, name="gone")
            att.start()
            att.push(Channel.STDOUT, b"one,")
            att.push(Channel.HEARTBEAT)
            att.push(Channel.STDOUT, b"two")
            await att.join()
            pending = att.pending_output
            handed_back.set_result((att.take_unsent_output(), pending))

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/"):
                pass
            return await handed_back

    assert run(scenario()) == (b"one,two", len(b"one,two"))


def test_a_shell_that_ignores_sighup_is_killed_after_the_grace_period() -> None:
    stubborn = ["sh", "-c", "trap '' HUP; echo ready; while :; do sleep 0.05; done"]

    async def scenario() -> tuple[list[tuple[int, bytes]], int | None]:
        async with _runtime(shell=stubborn, terminate_grace=0.2) as rt:
            async with await _connect(rt, new_id(), "stubborn") as ws:
                await read_until(ws, lambda f: b"ready" in stdout_of(f))
                await ws.send(b"\xff")
                frames: list[tuple[int, bytes]] = []
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        frames.append(await recv_frame(ws))
                assert info.value.rcvd is not None
                return frames, info.value.rcvd.code

    frames, code = run(scenario())
    assert code == 1000
    assert status.parse(frames[-1][1]) == Termination(
        exit_code=137, signal=9, message="command terminated with exit code 137"
    )


def test_output_written_just_before_exit_comes_before_the_termination_status() -> None:
    size = 300_000
    # The program itself writes the burst and exits at once: no parent shell lingers after it.
    burst = ["head", "-c", str(size), "/dev/zero"]

    async def scenario() -> list[tuple[int, bytes]]:
        async with _runtime(shell=burst) as rt:
            frames: list[tuple[int, bytes]] = []
            async with await _connect(rt, new_id(), "burst") as ws:
                with pytest.raises(ConnectionClosed):
                    while True:
                        frames.append(await recv_frame(ws))
            return frames

    for _ in range(3):  # the exit and the last output race each other in the loop
        frames = run(scenario())
        assert stdout_of(frames) == b"\0" * size
        assert frames[-1][0] == Channel.STATUS
        assert status.parse(frames[-1][1]) == Termination(exit_code=0)


def test_the_runtime_wide_shell_limit_refuses_new_shells_but_not_reattaching() -> None:
    async def scenario() -> tuple[int, str]:
        async with _runtime(shell=["sh"], max_shells=2) as rt:
            sessions = [new_id(), new_id()]
            for session_id in sessions:
                async with await _connect(rt, session_id, "one") as ws:
                    await recv_frame(ws)
            # Both shells live on, detached; a third, in yet another session, is one too many.
            with pytest.raises(InvalidStatus) as info:
                await _connect(rt, new_id(), "one")
            async with await _connect(rt, sessions[0], "one") as ws:
                first = status.parse((await recv_frame(ws))[1])
            assert first == Confirmation(shell_id="one", reconnected=True)
            return info.value.response.status_code, info.value.response.body.decode()

    code, body = run(scenario())
    assert code == 429
    assert "2 live shells" in body
