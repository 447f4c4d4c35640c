"""The local terminal helpers on real pseudo-terminals, pipes and files."""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from recorder.client.terminal import (
    DEFAULT_SIZE,
    READ_SIZE,
    isatty,
    raw_mode,
    read_chunks,
    terminal_size,
    write_all,
)
from recorder.protocol import Resize


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _collect(fd: int) -> list[bytes]:
    async def main() -> list[bytes]:
        return [chunk async for chunk in read_chunks(fd)]

    return asyncio.run(asyncio.wait_for(main(), 10))


def test_raw_mode_turns_off_echo_canonical_input_and_signals_then_restores(pty_pair: tuple[int, int]) -> None:
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ICANON and before[3] & termios.ECHO
    with raw_mode(slave) as raw:
        assert raw is True
        inside = termios.tcgetattr(slave)
        assert not inside[3] & (termios.ICANON | termios.ECHO | termios.ISIG)
        assert not inside[1] & termios.OPOST
    assert termios.tcgetattr(slave) == before


def test_raw_mode_is_restored_when_the_body_raises(pty_pair: tuple[int, int]) -> None:
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    with pytest.raises(RuntimeError, match="boom"), raw_mode(slave):
        raise RuntimeError("boom")
    assert termios.tcgetattr(slave) == before


def test_raw_mode_leaves_a_pipe_alone() -> None:
    read_end, write_end = os.pipe()
    try:
        with raw_mode(read_end) as raw:
            assert raw is False
    finally:
        os.close(read_end)
        os.close(write_end)


def test_raw_mode_keeps_typeahead(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    os.write(master, b"typed early")
    with raw_mode(slave):
        assert os.read(slave, 100).startswith(b"typed early")


def test_terminal_size_reads_the_pty_window_size(pty_pair: tuple[int, int]) -> None:
    _, slave = pty_pair
    _set_size(slave, 33, 101)
    assert terminal_size(slave) == Resize(101, 33)


def test_terminal_size_is_none_for_a_zero_size_pty_a_pipe_and_no_fd(pty_pair: tuple[int, int]) -> None:
    _, slave = pty_pair
    _set_size(slave, 0, 0)
    assert terminal_size(slave) is None
    read_end, write_end = os.pipe()
    try:
        assert terminal_size(read_end) is None
    finally:
        os.close(read_end)
        os.close(write_end)
    assert terminal_size(None) is None
    assert DEFAULT_SIZE == Resize(80, 24)


def test_isatty_is_false_for_a_closed_descriptor(pty_pair: tuple[int, int]) -> None:
    _, slave = pty_pair
    assert isatty(slave)
    spare = os.dup(slave)
    os.close(spare)
    assert not isatty(spare)


def test_read_chunks_reads_a_pipe_to_the_end() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"one two")
    os.close(write_end)
    try:
        chunks = _collect(read_end)
    finally:
        os.close(read_end)
    assert b"".join(chunks) == b"one two"
    assert chunks[-1] == b""


def test_read_chunks_reads_a_regular_file_the_loop_cannot_watch(tmp_path: Path) -> None:
    path = tmp_path / "input"
    path.write_bytes(b"x" * 200_000)
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = _collect(fd)
    finally:
        os.close(fd)
    assert b"".join(chunks) == b"x" * 200_000
    assert chunks[-1] == b""
    assert max(map(len, chunks)) == READ_SIZE


def test_read_chunks_treats_a_hung_up_pty_as_end_of_file() -> None:
    master, slave = os.openpty()
    os.write(master, b"last words\n")  # canonical mode: a read returns at the end of a line
    try:

        async def main() -> list[bytes]:
            got: list[bytes] = []
            async for chunk in read_chunks(slave):
                got.append(chunk)
                if chunk == b"last words\n":
                    os.close(master)  # hang up: the slave now reads EIO
            return got

        chunks = asyncio.run(asyncio.wait_for(main(), 10))
    finally:
        os.close(slave)
    assert chunks == [b"last words\n", b""]


def test_write_all_writes_everything_through_a_small_pipe() -> None:
    read_end, write_end = os.pipe()
    data = bytes(range(256)) * 4096  # 1 MiB, far over the pipe buffer
    received = bytearray()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        writer = loop.run_in_executor(None, write_all, write_end, data)
        while len(received) < len(data):
            received.extend(await loop.run_in_executor(None, os.read, read_end, 1 << 16))
        await writer

    try:
        asyncio.run(asyncio.wait_for(main(), 20))
    finally:
        os.close(read_end)
        os.close(write_end)
    assert bytes(received) == data
