"""The local terminal: raw mode, its size, and reading and writing file descriptors from asyncio."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import termios
import tty
from collections.abc import AsyncIterator, Iterator

from recorder.protocol import Resize

#: Size sent when no local terminal tells us one (the PTY default of most terminals).
DEFAULT_SIZE = Resize(80, 24)
#: Largest read from the local stdin at a time; the client splits it into frames that fit.
READ_SIZE = 64 * 1024


def isatty(fd: int) -> bool:
    """True when ``fd`` is open and refers to a terminal."""
    try:
        return os.isatty(fd)
    except OSError:
        return False


@contextlib.contextmanager
def raw_mode(fd: int) -> Iterator[bool]:
    """Put the terminal on ``fd`` in raw mode and restore its settings on every way out.

    Yields True when raw mode was entered, False when ``fd`` is not a terminal (nothing changes).
    """
    if not isatty(fd):
        yield False
        return
    saved = termios.tcgetattr(fd)
    # TCSANOW, not setraw's default TCSAFLUSH: keys typed while connecting must not be thrown away.
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield True
    finally:
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size(fd: int | None) -> Resize | None:
    """The size of the terminal on ``fd``, or None when there is none (or it reports 0x0)."""
    if fd is None:
        return None
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    if size.columns < 1 or size.lines < 1:
        return None
    return Resize(min(size.columns, 0xFFFF), min(size.lines, 0xFFFF))


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _readable_now(fd: int) -> bool:
    # The reader callback may fire once more after the data was consumed (level-triggered, and our
    # task can run before the stale callback in the same loop turn); a zero-timeout select makes sure
    # os.read on this blocking descriptor cannot stall the whole event loop.
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready)


async def read_chunks(fd: int, size: int = READ_SIZE) -> AsyncIterator[bytes]:
    """Yield what arrives on ``fd`` until end of file; the last item is ``b""``.

    Terminals, pipes and sockets are watched with the event loop; regular files and /dev/null, which
    the loop cannot watch, are read directly (they never block). The descriptor's blocking mode is
    left alone because it is usually shared with the terminal's stdout.
    """
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    try:
        loop.add_reader(fd, ready.set)
    except PermissionError:
        while True:
            data = _read(fd, size)
            if data is None:
                await asyncio.sleep(0)
                continue
            yield data
            if not data:
                return
            await asyncio.sleep(0)
    try:
        while True:
            await ready.wait()
            ready.clear()
            if not _readable_now(fd):
                continue
            data = _read(fd, size)
            if data is None:
                continue
            yield data
            if not data:
                return
    finally:
        loop.remove_reader(fd)


def _read(fd: int, size: int) -> bytes | None:
    try:
        return os.read(fd, size)
    except BlockingIOError:
        # Someone else made the descriptor non-blocking and nothing is there after all.
        return None
    except OSError:
        # EIO: the terminal hung up. Same meaning for us as end of file.
        return b""
