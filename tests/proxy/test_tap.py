"""The recording tap against real files: ordering, UTF-8, backpressure, flushing, failure."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recorder.cast.integrity import Status, sidecar_path, verify_file
from recorder.cast.reader import open_cast
from recorder.errors import CastWriteError, WriterStalled
from recorder.index.models import COUNTER_NAMES as INDEX_COUNTERS
from recorder.protocol import Channel, Resize, encode, status
from recorder.proxy import tap as tap_module
from recorder.proxy.tap import (
    C2U,
    COUNTER_NAMES,
    U2C,
    FailurePolicy,
    RecordingFailed,
    RecordingTap,
    SecretMasker,
    context_header,
)
from tests.procs import until


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


# -- integrity, stalls, gaps, secrets -------------------------------------------------------------------

KEY = Ed25519PrivateKey.generate()


def _signed_tap(path: Path, **kwargs: object) -> RecordingTap:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
    side = os.open(sidecar_path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
    header = context_header(2, 80, 24, 1_700_000_000, {"shell_id": "s"})
    return RecordingTap(fd, header, start=0.0, chain_fd=side, signer=KEY, **kwargs)  # type: ignore[arg-type]


async def test_each_batch_gets_a_checkpoint_after_its_data_and_close_seals(tmp_path: Path) -> None:
    path = tmp_path / "c.cast"
    tap = _signed_tap(path, flush_interval=0.02)
    tap.begin()
    await tap.put(U2C, encode(Channel.STDOUT, b"first batch\r\n"), None)
    await until(lambda: sidecar_path(path).read_bytes().count(b"\n") >= 2, 10, "the first checkpoint")
    # The checkpoint covers exactly what is in the file: a crash here verifies as a clean prefix.
    early = verify_file(path, KEY.public_key())
    assert early.status is Status.TRUNCATED and early.checkpoint == 1
    assert early.bytes == path.stat().st_size and early.unverified_bytes == 0
    await tap.put(U2C, encode(Channel.STDOUT, b"second batch\r\n"), None)
    result = await tap.close()
    assert result.sealed
    final = verify_file(path, KEY.public_key())
    assert final.status is Status.OK and final.checkpoint >= 2
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


async def test_later_lines_are_signed_within_the_interval_without_more_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second checkpoint's phase is random within the first interval; a draw near 0 would
    # sign the second batch before the check below (about 1.5% of runs). The whole interval here.
    monkeypatch.setattr(tap_module.random, "random", lambda: 1.0)
    path = tmp_path / "c.cast"
    tap = _signed_tap(path, flush_interval=0.01, checkpoint_interval=2.0)
    tap.begin()
    await tap.put(U2C, encode(Channel.STDOUT, b"first\r\n"), None)
    await until(lambda: sidecar_path(path).read_bytes().count(b"\n") >= 2, 10, "the first checkpoint")
    await tap.put(U2C, encode(Channel.STDOUT, b"second\r\n"), None)
    await until(lambda: b"second" in path.read_bytes(), 10, "the second batch's data")
    # In the file, not signed yet: the interval since the first checkpoint has not passed.
    early = verify_file(path, KEY.public_key())
    assert early.status is Status.TRUNCATED and early.checkpoint == 1 and early.unverified_bytes > 0
    # No more data comes, and still the writer wakes up to sign it.
    await until(lambda: verify_file(path, KEY.public_key()).checkpoint == 2, 10, "the second checkpoint")
    later = verify_file(path, KEY.public_key())
    assert later.unverified_bytes == 0 and later.bytes == path.stat().st_size
    result = await tap.close()
    assert result.sealed and verify_file(path, KEY.public_key()).status is Status.OK


def _fifo(tmp_path: Path) -> tuple[int, int]:
    """A pipe nobody drains: the write end blocks once the kernel's buffer is full."""
    fifo = tmp_path / "stuck"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    return reader, os.open(fifo, os.O_WRONLY)


async def test_a_writer_stuck_past_its_bound_fails_the_recording(tmp_path: Path) -> None:
    reader, writer = _fifo(tmp_path)
    failures: list[Exception] = []
    tap = RecordingTap(
        writer,
        context_header(2, 80, 24, 0, {}),
        start=0.0,
        max_buffer=64 * 1024,
        flush_interval=0.01,
        stall_timeout=0.3,
        on_failure=failures.append,
    )
    tap.begin()
    try:
        with pytest.raises(RecordingFailed):
            for i in range(10_000):  # far more than the pipe and the queue hold together
                await tap.put(U2C, encode(Channel.STDOUT, b"z" * 4096), i / 1000)
        assert failures and isinstance(failures[0], WriterStalled)
        await asyncio.wait_for(tap.close(), 10)  # close does not wait for the stuck write
    finally:
        os.close(reader)  # the stuck write now fails (EPIPE) and its thread ends


async def test_continue_policy_drops_while_stuck_and_marks_the_gap(tmp_path: Path) -> None:
    reader, writer = _fifo(tmp_path)
    tap = RecordingTap(
        writer,
        context_header(2, 80, 24, 0, {}),
        start=0.0,
        max_buffer=64 * 1024,
        flush_interval=0.01,
        stall_timeout=0.3,
        policy=FailurePolicy.CONTINUE,
    )
    tap.begin()
    for i in range(100):  # ~400 KiB: the pipe (64 KiB) and the queue fill, then the writer stalls
        await tap.put(U2C, encode(Channel.STDOUT, b"a" * 4096), i / 1000)
    await until(lambda: tap.stalled, 10, "the stall to be noticed")
    dropped_while_stalled = 20 * 4096
    for i in range(20):
        await tap.put(U2C, encode(Channel.STDOUT, b"b" * 4096), 1 + i / 1000)  # returns at once
    drained = bytearray()

    async def drain() -> None:
        while True:
            try:
                chunk = os.read(reader, 1 << 16)
            except BlockingIOError:
                chunk = None
            if chunk == b"":
                return
            if chunk:
                drained.extend(chunk)
            else:
                await asyncio.sleep(0.01)

    draining = asyncio.ensure_future(drain())
    await until(lambda: not tap.stalled, 10, "the writer to recover")
    await tap.put(U2C, encode(Channel.STDOUT, b"after\r\n"), 2.0)
    result = await tap.close()
    await asyncio.wait_for(draining, 10)
    os.close(reader)
    text = bytes(drained).decode()
    # Everything put while the writer was stuck is missing, and counted where it is missing.
    assert result.gap_bytes >= dropped_while_stalled and tap.failure is None
    assert f"recording gap: {result.gap_bytes} bytes not recorded" in text
    assert f"recording gaps: {result.gap_bytes} bytes in all not recorded" in text
    assert "after\\r\\n" in text and "b" * 4096 not in text


def test_secret_masker_masks_unechoed_input_after_a_password_prompt() -> None:
    m = SecretMasker(window=0.2)
    out = m.feed(0.0, "o", "[sudo] password for root: ")
    out += m.feed(1.0, "i", "h")  # held: no echo yet
    assert out == [(0.0, "o", "[sudo] password for root: ")]
    out += m.feed(1.1, "i", "u")
    out += m.feed(1.5, "i", "n")  # past the window with no echo: a secret
    out += m.feed(1.6, "i", "t\r")
    out += m.feed(1.7, "o", "\r\n$ ")
    out += m.feed(1.8, "i", "ls")  # a normal prompt again: written as typed
    assert out[1:] == [
        (1.0, "i", "*"),
        (1.1, "i", "*"),
        (1.5, "i", "*"),
        (1.6, "i", "*\r"),
        (1.7, "o", "\r\n$ "),
        (1.8, "i", "ls"),
    ]
    assert m.masked_chars == 4


def test_secret_masker_lets_echoed_input_through_in_order() -> None:
    m = SecretMasker(window=0.2)
    out = m.feed(0.0, "o", "Name: ")
    out += m.feed(1.0, "i", "bob")
    out += m.feed(1.05, "m", "a marker while held")
    out += m.feed(1.1, "o", "bob")
    out += m.feed(1.2, "i", "\r")
    assert out == [
        (0.0, "o", "Name: "),
        (1.0, "i", "bob"),
        (1.05, "m", "a marker while held"),
        (1.1, "o", "bob"),
        (1.2, "i", "\r"),
    ]
    assert m.masked_chars == 0


def test_secret_masker_decides_on_the_clock_and_at_the_end() -> None:
    m = SecretMasker(window=0.2)
    m.feed(0.0, "o", "Enter passphrase for key: ")
    assert m.feed(1.0, "i", "s3cret\r") == []
    assert m.deadline == pytest.approx(1.2)
    assert m.tick(1.1) == []
    assert m.tick(1.3) == [(1.0, "i", "******\r")]
    m.feed(2.0, "o", "Password: ")
    m.feed(3.0, "i", "x")
    assert m.flush() == [(3.0, "i", "*")]


def test_secret_masker_flush_writes_everything_even_when_a_decision_starts_a_new_hold() -> None:
    m = SecretMasker(window=10.0)
    m.feed(0.0, "o", "Password: ")
    assert m.feed(1.0, "i", "z") == []
    events = [(1.1, "o", "\r\nPIN: "), (1.2, "i", "q"), (1.3, "o", "(none)"), (1.4, "x", "0")]
    for ev in events:
        assert m.feed(*ev) == []
    out = m.flush()
    assert [(t, c) for t, c, _ in out] == [(1.0, "i"), (1.1, "o"), (1.2, "i"), (1.3, "o"), (1.4, "x")]
    assert m.deadline is None and m.masked_chars == 2


def test_secret_masker_ignores_prompts_of_full_screen_programs() -> None:
    m = SecretMasker(window=0.2)
    out = m.feed(0.0, "o", "\x1b[?1049h1\r\n2\r\n:")  # less, on the alternate screen
    out += m.feed(1.0, "i", "q")  # not echoed, but a pager key, not a secret
    out += m.feed(1.1, "o", "\x1b[?1049l\x1b]133;A\x07$ \x1b]133;B\x07")
    out += m.feed(1.2, "i", "exit 0\r")
    assert (1.0, "i", "q") in out and (1.2, "i", "exit 0\r") in out
    assert m.masked_chars == 0


def test_secret_masker_ends_a_secret_at_the_next_shell_prompt() -> None:
    m = SecretMasker(window=0.2)
    m.feed(0.0, "o", "Password: ")
    out = m.feed(1.0, "i", "abc")  # no Enter: the program gave up (Ctrl-C from elsewhere, timeout)
    out += m.feed(1.5, "o", "\r\n\x1b]133;A\x07$ \x1b]133;B\x07")
    out += m.feed(1.6, "i", "ls\r")
    assert (1.0, "i", "***") in out and (1.6, "i", "ls\r") in out


def test_secret_masker_holds_at_most_its_limit() -> None:
    m = SecretMasker(window=10.0, max_held=3)
    m.feed(0.0, "o", "password: ")
    out: list[tuple[float, str, str]] = []
    for i in range(3):
        out += m.feed(1.0 + i / 100, "o" if i else "i", "q" if not i else "?")
    assert out == []  # three events held: the limit
    out += m.feed(1.03, "o", "?")  # one more decides at once, long before the window ends
    assert out[0] == (1.0, "i", "*") and len(out) == 4


async def test_tap_masks_a_secret_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.cast"
    tap = _tap(path, mask_secrets=True)
    tap.begin()
    await tap.put(U2C, encode(Channel.STDOUT, b"Password: "), 0.1)
    await tap.put(C2U, encode(Channel.STDIN, b"hunter2"), 0.2)
    await tap.put(C2U, encode(Channel.STDIN, b"\r"), 0.3)
    await tap.put(U2C, encode(Channel.STDOUT, b"\r\nok\r\n"), 0.4)
    result = await tap.close()
    assert b"hunter2" not in path.read_bytes()
    assert [(c, d) for _, c, d in _events(path)] == [
        ("o", "Password: "),
        ("i", "*******"),
        ("i", "\r"),
        ("o", "\r\nok\r\n"),
    ]
    assert result.masked_chars == 7


@given(st.text(alphabet=st.sampled_from(list("pasSwordPINn:; \t\r\n\x1b[0m\u017f\u212aK?x")), max_size=80))
@example("Pa\u017f\u017fword: x")  # the long s folds to s
@example("Enter PIN")
@example("\u212aey pin\x1b[0m ")  # the Kelvin sign folds to k
@example("login:\t")
@settings(max_examples=400, deadline=None)
def test_the_quick_prompt_test_agrees_with_the_full_search(output: str) -> None:
    # The cheap tests in front of the case-blind search must never change its answer.
    masker = SecretMasker()
    masker.feed(0.0, "o", output)
    last = tap_module._ESCAPES.sub("", output[-tap_module.PROMPT_TAIL_CHARS :])
    last = last.replace("\r", "\n").rsplit("\n", 1)[-1]
    assert masker._prompt_like() == (tap_module._PROMPT.search(last) is not None)
