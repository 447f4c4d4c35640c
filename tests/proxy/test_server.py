"""The proxy end to end: real runtime and proxy processes, real WebSockets over loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from recorder.cast.reader import open_cast
from recorder.index.search import search
from recorder.protocol import (
    SESSION_HEADER,
    SHELL_ID_HEADER,
    Channel,
    Resize,
    RuntimeArn,
    ShellRequest,
    decode,
    encode,
    status,
)
from tests.procs import TEST_ARN, LocalShellClient, wait_until
from tests.proxy.conftest import Stack, stack


def _target(shell_id: str | None = None, session_id: str | None = None) -> ShellRequest:
    return ShellRequest(RuntimeArn.parse(TEST_ARN), None, shell_id or uuid.uuid4().hex, session_id)


@asynccontextmanager
async def shell(
    base: str, shell_id: str | None = None, session_id: str | None = None
) -> AsyncIterator[ClientConnection]:
    req = _target(shell_id, session_id or str(uuid.uuid4()))
    async with connect(base + req.target(), additional_headers={SESSION_HEADER: req.session_id or ""}) as ws:
        yield ws


async def collect(ws: ClientConnection) -> tuple[bytes, list[bytes]]:
    """All STDOUT bytes and every STATUS payload until the server closes."""
    out = bytearray()
    statuses: list[bytes] = []
    try:
        async for message in ws:
            assert isinstance(message, bytes)
            frame = decode(message)
            if frame.channel == Channel.STDOUT:
                out += frame.payload
            elif frame.channel == Channel.STATUS:
                statuses.append(frame.payload)
    except ConnectionClosed:
        pass
    return bytes(out), statuses


def cast_events(path: Path) -> list[tuple[float, str, str]]:
    with open_cast(path) as reader:
        return [(e.time, e.code, e.data) for e in reader.events()]


def output_of(path: Path) -> str:
    return "".join(d for _, c, d in cast_events(path) if c == "o")


async def test_client_output_equals_recorded_output_and_asciinema_replays_it(proxied: Stack) -> None:
    async with shell(proxied.url) as ws:
        await ws.send(encode(Channel.RESIZE, Resize(132, 43).serialize()))
        await ws.send(
            encode(
                Channel.STDIN, b"printf 'plain ascii\\n'; printf '\\xc3\\xa9t\\xc3\\xa9 \\xe2\\x82\\xac\\n'\r"
            )
        )
        await ws.send(encode(Channel.STDIN, b"stty size; exit 0\r"))
        out, statuses = await collect(ws)
        assert ws.close_code == 1000
        assert ws.response is not None and ws.response.headers[SHELL_ID_HEADER]
    assert "été €" in out.decode() and "43 132" in out.decode()
    assert status.parse(statuses[-1]) == status.Termination(exit_code=0)
    (row,) = proxied.finished()
    path = proxied.cast_path(row)
    assert output_of(path) == out.decode()
    events = cast_events(path)
    times = [t for t, _, _ in events]
    assert times == sorted(times)
    codes = {c for _, c, _ in events}
    assert {"o", "i", "x", "m"} <= codes
    with open_cast(path) as reader:
        assert (reader.header.width, reader.header.height) == (132, 43)
        assert reader.header.context["shell_id"] == row.shell_id
    assert row.end_reason == "exit" and row.exit_code == 0 and row.close_code == 1000
    assert row.counters["bytes_stdout"] == len(out)
    cat = subprocess.run(
        [str(Path(sys.executable).with_name("asciinema")), "cat", str(path)], capture_output=True, timeout=60
    )
    assert cat.returncode == 0, cat.stderr
    assert cat.stdout == out


@pytest.mark.parametrize("cast_version", ["2", "3"])
async def test_twenty_megabyte_burst_is_recorded_byte_for_byte(tmp_path: Path, cast_version: str) -> None:
    with stack(tmp_path, "--cast-version", cast_version) as s:
        async with shell(s.url) as ws:
            await ws.send(encode(Channel.STDIN, b"stty -echo; seq 1 2700000; exit 7\r"))
            out, statuses = await collect(ws)
        assert len(out) > 20_000_000
        assert status.parse(statuses[-1]) == status.Termination(
            exit_code=7, message="command terminated with exit code 7"
        )
        (row,) = s.finished()
        assert row.cast_version == int(cast_version)
        path = s.cast_path(row)
        recorded = output_of(path)
        assert len(recorded) == len(out) and recorded == out.decode()
        assert row.exit_code == 7 and row.recording_size == path.stat().st_size


async def scripted_upstream(frames: list[bytes], close_code: int = 1000) -> tuple[object, str]:
    """A minimal protocol peer that sends fixed frames: the edge that lets a test choose the framing."""

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame)
        await ws.close(close_code, "scripted")

    server = await serve(handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    return server, f"ws://127.0.0.1:{port}"


async def test_multibyte_utf8_split_at_every_offset_comes_out_exact(tmp_path: Path) -> None:
    text = "ascii é ß € 😀 中文 ✓".encode()
    frames = [encode(Channel.STATUS, status.confirmation("s1"))]
    expected = b""
    for cut in range(1, len(text)):
        frames += [encode(Channel.STDOUT, text[:cut]), encode(Channel.STDOUT, text[cut:] + b"\n")]
        expected += text + b"\n"
    frames.append(encode(Channel.STATUS, status.exited(0)))
    server, url = await scripted_upstream(frames)
    try:
        with stack(tmp_path, upstream=url) as s:
            async with shell(s.url, shell_id="s1") as ws:
                out, _ = await collect(ws)
            assert out == expected
            (row,) = s.finished()
            assert output_of(s.cast_path(row)) == expected.decode()
            assert row.invalid_utf8 == 0
    finally:
        server.close()  # type: ignore[attr-defined]


async def test_unknown_channels_are_forwarded_both_ways(tmp_path: Path) -> None:
    frames = [
        encode(Channel.STATUS, status.confirmation("s1")),
        encode(0x42, b"future"),
        encode(Channel.STATUS, status.exited(0)),
    ]
    server, url = await scripted_upstream(frames)
    try:
        with stack(tmp_path, upstream=url) as s:
            async with shell(s.url, shell_id="s1") as ws:
                received = [decode(m) for m in [await ws.recv(), await ws.recv()]]  # type: ignore[arg-type]
            assert received[1].channel == 0x42 and received[1].payload == b"future"
            (row,) = s.finished()
            assert row.counters["frames_unknown"] == 1
    finally:
        server.close()  # type: ignore[attr-defined]


def _sdk_session(base: str, **kwargs: object) -> object:
    sdk = pytest.importorskip("bedrock_agentcore.runtime.shell")
    return sdk.ShellSession(LocalShellClient(base), TEST_ARN, **kwargs)


async def _sdk_run(base: str, command: str, **kwargs: object) -> tuple[str, int | None]:
    session = _sdk_session(base, **kwargs)
    out = []
    async with session as sh:  # type: ignore[attr-defined]
        await sh.send(command)
        async for frame in sh:
            if frame.channel == 1:
                out.append(frame.text)
    return "".join(out), session.exit_code  # type: ignore[attr-defined]


@pytest.mark.parametrize(("command", "code"), [("exit 0\n", 0), ("exit 42\n", 42), ("kill -9 $$\n", 137)])
async def test_sdk_exit_codes_through_the_proxy_match_direct(proxied: Stack, command: str, code: int) -> None:
    assert proxied.runtime is not None
    _, direct = await _sdk_run(proxied.runtime.url, command)
    _, through = await _sdk_run(proxied.url, command)
    assert direct == through == code
    rows = proxied.finished(1)
    assert rows[0].exit_code == code and rows[0].end_reason == "exit"


async def test_sdk_reconnect_through_the_proxy_replays_buffered_output(proxied: Stack) -> None:
    session_id, shell_id = str(uuid.uuid4()), "keepme"
    first = _sdk_session(proxied.url, session_id=session_id, shell_id=shell_id)
    async with first as sh:  # type: ignore[attr-defined]
        await sh.send("export MARK=kept; (sleep 0.5; echo while-detached) &\n")
        async for frame in sh:
            if frame.channel == 1 and "$ " in frame.text or "# " in frame.text:
                break
    # The SDK closes the WebSocket without a CLOSE frame: the shell is left detached.
    await asyncio.sleep(1.0)
    second = _sdk_session(proxied.url, session_id=session_id, shell_id=shell_id)
    seen = ""
    async with second as sh:  # type: ignore[attr-defined]
        await sh.send("echo mark=$MARK; exit 0\n")
        async for frame in sh:
            if frame.channel == 1:
                seen += frame.text
    assert "while-detached" in seen and "mark=kept" in seen
    rows = proxied.finished(2)
    assert rows[0].reconnected and rows[0].exit_code == 0
    assert rows[1].end_reason in ("client-closed", "client-dropped")
    assert any("reconnect" in d for _, c, d in cast_events(proxied.cast_path(rows[0])) if c == "m")


async def test_kick_passes_4000_through_and_is_recorded(proxied: Stack) -> None:
    session_id = str(uuid.uuid4())
    async with shell(proxied.url, shell_id="shared", session_id=session_id) as first:
        await first.recv()
        async with shell(proxied.url, shell_id="shared", session_id=session_id) as second:
            with pytest.raises(ConnectionClosed):
                while True:
                    await first.recv()
            assert first.close_code == 4000
            await second.send(encode(Channel.STDIN, b"exit 0\r"))
            await collect(second)
    rows = proxied.finished(2)
    kicked = [r for r in rows if r.end_reason == "kicked"]
    assert len(kicked) == 1 and kicked[0].close_code == 4000
    assert any(c == "m" and d.startswith("kicked") for _, c, d in cast_events(proxied.cast_path(kicked[0])))


async def test_bad_input_close_codes_pass_through(proxied: Stack) -> None:
    async with shell(proxied.url) as ws:
        await ws.send("text is not allowed")
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
        assert ws.close_code == 1003
    async with shell(proxied.url) as ws:
        await ws.send(b"\x00" + b"x" * 70_000)
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
        assert ws.close_code == 1009
    rows = proxied.finished(2)
    assert {r.close_code for r in rows} == {1003, 1009}


async def test_refusals_before_the_upgrade(proxied: Stack) -> None:
    bad = proxied.url + "/runtimes/" + "arn%3Aaws%3Anope" + "/ws/shells"
    with pytest.raises(InvalidStatus) as info:
        async with connect(bad):
            pass
    assert info.value.response.status_code == 400
    with pytest.raises(InvalidStatus) as info:
        async with connect(proxied.url + "/elsewhere"):
            pass
    assert info.value.response.status_code == 404
    refusals = proxied.index.list_refusals()
    assert {r.http_status for r in refusals} == {400, 404}


async def test_upstream_429_reaches_the_client(proxied: Stack) -> None:
    session_id = str(uuid.uuid4())
    async with asyncio.timeout(60):
        opened = []
        try:
            for i in range(10):
                cm = shell(proxied.url, shell_id=f"s{i}", session_id=session_id)
                opened.append((cm, await cm.__aenter__()))
            with pytest.raises(InvalidStatus) as info:
                async with shell(proxied.url, shell_id="s10", session_id=session_id):
                    pass
            assert info.value.response.status_code == 429
        finally:
            for cm, _ in opened:
                await cm.__aexit__(None, None, None)
    assert any(r.http_status == 429 for r in proxied.index.list_refusals())


async def test_unreachable_upstream_is_502_and_recorded(tmp_path: Path) -> None:
    with stack(tmp_path, upstream="ws://127.0.0.1:9") as s:
        with pytest.raises(InvalidStatus) as info:
            async with shell(s.url):
                pass
        assert info.value.response.status_code == 502
        assert [r.http_status for r in s.index.list_refusals()] == [502]


async def test_sigterm_sends_1001_finalises_and_exits_zero(proxied: Stack) -> None:
    async with shell(proxied.url) as ws:
        await ws.send(encode(Channel.STDIN, b"echo before-shutdown\r"))
        while b"before-shutdown\r\n" not in (await collect_until(ws, b"before-shutdown\r\n")):
            pass
        proxied.proxy.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
        assert ws.close_code == 1001
    assert proxied.proxy.wait() == 0
    (row,) = proxied.index.list_connections()
    assert row.status == "ended" and row.end_reason == "proxy-shutdown"
    assert "before-shutdown" in output_of(proxied.cast_path(row))


async def collect_until(ws: ClientConnection, needle: bytes) -> bytes:
    out = b""
    while needle not in out:
        frame = decode(await ws.recv())  # type: ignore[arg-type]
        if frame.channel == Channel.STDOUT:
            out += frame.payload
    return out


async def test_kill_9_mid_session_leaves_a_playable_interrupted_recording(tmp_path: Path) -> None:
    with stack(tmp_path) as s:
        async with shell(s.url) as ws:
            await ws.send(encode(Channel.STDIN, b"echo flushed-before-kill\r"))
            await collect_until(ws, b"flushed-before-kill\r\n")
            # Flushes happen at least every 100 ms; wait until the line is on disk, then kill.
            rec_dir = s.data_dir / "recordings"
            wait_until(
                lambda: any(b"flushed-before-kill" in p.read_bytes() for p in rec_dir.rglob("*.cast")),
                10,
                "the output to reach the file",
            )
            os.kill(s.proxy.proc.pid, signal.SIGKILL)
            s.proxy.wait()
        (row,) = s.index.list_connections()
        assert row.status == "active"
        from tests.procs import start_recorder
        from tests.proxy.conftest import proxy_args

        assert s.runtime is not None
        with start_recorder(*proxy_args(s.data_dir, s.db_url, s.runtime.url)):
            wait_until(lambda: s.index.list_connections()[0].status == "interrupted", 20, "recovery")
            row_id = s.index.list_connections()[0].id
            wait_until(
                lambda: s.index.indexed(row_id) is not None, 30, "the recovered recording to be indexed"
            )
        hits = search(s.index, '"flushed before kill"', kinds={"output"})
        assert {h.connection_id for h in hits} == {row_id}
        (row,) = s.index.list_connections()
        path = s.cast_path(row)
        assert "flushed-before-kill" in output_of(path)
        assert row.recording_size == path.stat().st_size and row.ended_at is not None


async def test_default_upstream_is_the_embedded_runtime(tmp_path: Path) -> None:
    with stack(tmp_path, upstream="local") as s:
        out, _ = await _sdk_run(s.url, "echo embedded-$((6*7)); exit 5\n")
        assert "embedded-42" in out
        (row,) = s.finished()
        assert row.upstream == "local" and row.exit_code == 5


async def test_a_stopping_proxy_cuts_indexing_short_and_the_next_one_indexes_what_was_left(
    tmp_path: Path,
) -> None:
    # Indexing runs in a child process; stopping the proxy stops it at once rather than waiting
    # (a long recording takes many seconds to index), and the next start catches up.
    with stack(tmp_path) as s:
        async with shell(s.url) as ws:
            await ws.send(encode(Channel.STDIN, b"stty -echo; seq 1 1500000; exit 0\r"))
            out, _ = await collect(ws)
        assert b"\r\n1500000\r\n" in out
        (row,) = s.finished()
    # The proxy exited (stack waits for it) without indexing 1.5 million lines first.
    assert s.index.indexed(row.id) is None, "expected indexing to be cut short by the stop"
    with stack(tmp_path) as again:
        wait_until(lambda: again.index.indexed(row.id) is not None, 120, "the next proxy to index it")
        hits = search(again.index, "1499999", kinds={"output"})
        assert [(h.connection_id, h.text) for h in hits] == [(row.id, "1499999")]
