"""The recording tap against real files: ordering, UTF-8, backpressure, flushing, failure."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from recorder.cast.reader import open_cast
from recorder.errors import CastWriteError
from recorder.index.models import COUNTER_NAMES as INDEX_COUNTERS
from recorder.protocol import Channel, Resize, encode, status
from recorder.proxy.tap import C2U, COUNTER_NAMES, U2C, RecordingFailed, RecordingTap, context_header


def _tap(path: Path, **kwargs: object) -> RecordingTap:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    header = context_header(2, 80, 24, 1_700_000_000, {"shell_id": "s"})
    return RecordingTap(fd, header, start=0.0, **kwargs)  # type: ignore[arg-type]


def _events(path: Path) -> list[tuple[float, str, str]]:
    with open_cast(path) as reader:
        return [(e.time, e.code, e.data) for e in reader.events()]


def test_counters_are_the_index_columns() -> None:
    assert set(COUNTER_NAMES) == set(INDEX_COUNTERS)


async def test_frames_become_asciicast_events_in_order(tmp_path: Path) -> None:
    path = tmp_path / "a.cast"
    tap = _tap(path)
    tap.begin()
    await tap.put(C2U, encode(Channel.RESIZE, Resize(120, 40).serialize()), 0.01)
    await tap.put(U2C, encode(Channel.STATUS, status.confirmation("s")), 0.02)
    await tap.put(C2U, encode(Channel.STDIN, b"ls\r"), 0.5)
    await tap.put(U2C, encode(Channel.STDOUT, b"file\r\n"), 0.6)
    await tap.put(C2U, encode(Channel.RESIZE, Resize(100, 30).serialize()), 0.7)
    await tap.put(U2C, encode(Channel.STDERR, b"platform says hi"), 0.8)
    await tap.put(C2U, encode(Channel.HEARTBEAT), 0.85)
    await tap.put(U2C, encode(0x42, b"future"), 0.86)
    await tap.put(U2C, encode(Channel.STATUS, status.exited(0, signal=9)), 0.9)
    result = await tap.close()
    with open_cast(path) as reader:
        assert (reader.header.width, reader.header.height) == (120, 40)
        assert reader.header.context == {"shell_id": "s"}
    assert _events(path) == [
        (0.5, "i", "ls\r"),
        (0.6, "o", "file\r\n"),
        (0.7, "r", "100x30"),
        (0.8, "m", "stderr: platform says hi"),
        (0.9, "m", "killed by signal 9"),
        (0.9, "x", "137"),
    ]
    assert result.exit_code == 137 and result.termination_seen
    assert result.counters["frames_heartbeat"] == 1 and result.counters["frames_unknown"] == 1
    assert result.counters["bytes_unknown"] == len(b"future")
    assert result.counters["bytes_stdout"] == len(b"file\r\n")
    assert result.size == path.stat().st_size
    import hashlib

    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


async def test_times_never_go_back(tmp_path: Path) -> None:
    path = tmp_path / "t.cast"
    tap = _tap(path)
    tap.begin()
    for t in (0.3, 0.1, 0.2, 0.5):
        await tap.put(U2C, encode(Channel.STDOUT, b"x"), t)
    await tap.close()
    times = [t for t, _, _ in _events(path)]
    assert times == sorted(times) and times[0] == 0.3


@pytest.mark.parametrize("split", range(1, 4))
async def test_utf8_split_across_frames_is_exact(tmp_path: Path, split: int) -> None:
    data = "é€😀".encode()
    path = tmp_path / "u.cast"
    tap = _tap(path)
    tap.begin()
    for i in range(0, len(data), split):
        await tap.put(U2C, encode(Channel.STDOUT, data[i : i + split]), 0.1 + i / 100)
    result = await tap.close()
    assert "".join(d for _, c, d in _events(path) if c == "o") == "é€😀"
    assert result.invalid_utf8 == 0


async def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "bad.cast"
    tap = _tap(path)
    tap.begin()
    await tap.put(U2C, encode(Channel.STDOUT, b"ok\xff\xfe!"), 0.1)
    await tap.put(U2C, encode(Channel.STDOUT, b"\xe2\x82"), 0.2)  # cut short by the end of the stream
    result = await tap.close()
    assert "".join(d for _, c, d in _events(path) if c == "o") == "ok\ufffd\ufffd!\ufffd"
    assert result.invalid_utf8 == 3


async def test_full_buffer_makes_the_relay_wait_and_drops_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bp.cast"
    chunk = b"y" * 1000
    tap = _tap(path, max_buffer=4096, flush_interval=0.01, batch_bytes=2048)
    tap.begin()
    peak = 0
    waited = 0
    for i in range(300):
        put = asyncio.ensure_future(tap.put(U2C, encode(Channel.STDOUT, chunk), i / 1000))
        if not put.done():
            await asyncio.sleep(0)
        if not put.done():
            waited += 1
        await put
        peak = max(peak, tap.queued_bytes)
    await tap.close()
    assert peak <= 4096
    assert waited > 0, "the bound was never reached, so backpressure was not exercised"
    assert "".join(d for _, c, d in _events(path) if c == "o") == "y" * 300_000


async def test_data_reaches_the_file_before_close(tmp_path: Path) -> None:
    path = tmp_path / "f.cast"
    tap = _tap(path, flush_interval=0.05)
    tap.begin()
    await tap.put(U2C, encode(Channel.STDOUT, b"visible"), None)
    for _ in range(200):
        if b"visible" in path.read_bytes():
            break
        await asyncio.sleep(0.02)
    assert b"visible" in path.read_bytes()
    await tap.close()


async def test_disk_full_fails_the_tap_and_calls_back(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full is not available")
    fd = os.open("/dev/full", os.O_WRONLY)
    failures: list[Exception] = []
    header = context_header(2, 80, 24, 0, {})
    tap = RecordingTap(fd, header, start=0.0, flush_interval=0.01, on_failure=failures.append)
    tap.begin()
    await tap.put(U2C, encode(Channel.STDOUT, b"x" * 100), 0.0)
    for _ in range(200):
        if failures:
            break
        await asyncio.sleep(0.01)
    assert failures and isinstance(failures[0], CastWriteError)
    assert "No space left" in str(failures[0])
    with pytest.raises(RecordingFailed):
        await tap.put(U2C, encode(Channel.STDOUT, b"more"), 0.1)
    await tap.close()
    assert tap.failure is not None
