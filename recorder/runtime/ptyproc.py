"""A program on a real pseudo-terminal, driven from the asyncio loop without threads."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import signal
import struct
import subprocess
import termios
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from recorder.errors import ShellSpawnError

#: Most bytes taken from the PTY master per read.
READ_SIZE = 16 * 1024
#: Reads that are ready at once are joined up to this size into one STDOUT frame: the kernel hands
#: out at most ~4 KiB per read, and a frame per read costs more than the bytes themselves.
COALESCE_SIZE = 64 * 1024 - 1
#: Terminal size before the first RESIZE (columns, rows).
DEFAULT_SIZE = (80, 24)


def _acquire_controlling_tty() -> None:
    # Runs in the child between fork and exec: after setsid (start_new_session) the PTY on fd 0
    # becomes the controlling terminal, so job control, ^C and SIGWINCH work.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _winsize(cols: int, rows: int) -> bytes:
    return struct.pack("HHHH", rows, cols, 0, 0)


class PtyProcess:
    """A child process whose stdin, stdout and stderr are the slave side of a fresh PTY."""

    def __init__(self, proc: subprocess.Popen[bytes], master_fd: int) -> None:
        self._proc = proc
        self._fd: int | None = master_fd
        self._loop = asyncio.get_running_loop()
        self._on_data: Callable[[bytes], None] | None = None
        self._on_eof: Callable[[], None] | None = None
        self._reading = False
        self._eof = False
        self._exit: asyncio.Future[int] = self._loop.create_future()
        self._watch_exit()

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | Path | None = None,
        size: tuple[int, int] = DEFAULT_SIZE,
    ) -> PtyProcess:
        """Start ``argv`` in a new session with a new PTY as its controlling terminal."""
        master, slave = os.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, _winsize(*size))
            proc = subprocess.Popen(
                list(argv),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                # Python 3.11 has no other way to take a controlling terminal before exec; the hook is
                # one ioctl, and the runtime (pidfd exit watching) starts no threads of its own.
                preexec_fn=_acquire_controlling_tty,
                close_fds=True,
            )
        except OSError as exc:
            os.close(master)
            raise ShellSpawnError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
        finally:
            # Only the child keeps the slave open, so the master reads EIO once every user is gone.
            os.close(slave)
        os.set_blocking(master, False)
        return cls(proc, master)

    @property
    def pid(self) -> int:
        """The child's process id (also its process group and session id)."""
        return self._proc.pid

    @property
    def exited(self) -> bool:
        """True once the child has been reaped."""
        return self._exit.done()

    @property
    def eof(self) -> bool:
        """True once the master side read end of file (every slave user is gone)."""
        return self._eof

    @property
    def reading(self) -> bool:
        """True while output is being read from the master."""
        return self._reading

    # ---- output

    def start_reading(self, on_data: Callable[[bytes], None], on_eof: Callable[[], None]) -> None:
        """Deliver output to ``on_data`` as it arrives and call ``on_eof`` once at the end."""
        self._on_data, self._on_eof = on_data, on_eof
        self.resume_reading()

    def pause_reading(self) -> None:
        """Stop reading the master: the program blocks once the kernel's PTY buffer is full."""
        if self._reading and self._fd is not None:
            self._loop.remove_reader(self._fd)
        self._reading = False

    def resume_reading(self) -> None:
        """Read the master again."""
        if not self._reading and not self._eof and self._fd is not None and self._on_data is not None:
            self._loop.add_reader(self._fd, self._readable)
            self._reading = True

    def drain(self) -> None:
        """Read whatever the master holds right now, without waiting and regardless of pausing."""
        while not self._eof and self._fd is not None:
            if not self._read_once():
                return

    def _readable(self) -> None:
        self._read_once()

    def _read_once(self) -> bool:
        assert self._fd is not None
        chunks: list[bytes] = []
        size = 0
        eof = False
        while size < COALESCE_SIZE:
            try:
                data = os.read(self._fd, min(READ_SIZE, COALESCE_SIZE - size))
            except BlockingIOError:
                break
            except OSError as exc:
                # Linux reports EIO on the master once the last slave user is gone, after the buffered data.
                if exc.errno not in (errno.EIO, errno.EBADF):
                    raise
                data = b""
            if not data:
                eof = True
                break
            chunks.append(data)
            size += len(data)
        if chunks:
            assert self._on_data is not None
            self._on_data(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if eof:
            self._set_eof()
            return False
        return bool(chunks)

    def _set_eof(self) -> None:
        self.pause_reading()
        if not self._eof:
            self._eof = True
            if self._on_eof is not None:
                self._on_eof()

    # ---- input and control

    async def write(self, data: bytes) -> None:
        """Write input to the program, waiting while the PTY's input buffer is full."""
        view = memoryview(data)
        while view and self._fd is not None and not self._eof:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                written = 0
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return
                raise
            view = view[written:]
            if view:
                await self._writable()

    async def _writable(self) -> None:
        assert self._fd is not None
        fd = self._fd
        ready: asyncio.Future[int] = self._loop.create_future()

        def on_writable() -> None:
            if not ready.done():
                ready.set_result(fd)

        self._loop.add_writer(fd, on_writable)
        try:
            # The exit future wakes us too: a program that exits never drains its input.
            await asyncio.wait([ready, self._exit], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._loop.remove_writer(fd)

    def resize(self, cols: int, rows: int) -> None:
        """Set the terminal size; the kernel sends SIGWINCH to the foreground process group."""
        if self._fd is not None:
            fcntl.ioctl(self._fd, termios.TIOCSWINSZ, _winsize(cols, rows))

    def size(self) -> tuple[int, int]:
        """The terminal size as (columns, rows)."""
        if self._fd is None:
            return DEFAULT_SIZE
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(self._fd, termios.TIOCGWINSZ, bytes(8)))
        return cols, rows

    def hangup(self) -> None:
        """Send SIGHUP to the program and to the terminal's foreground job, as a closed terminal does."""
        groups = {self.pid}
        if self._fd is not None:
            with contextlib.suppress(OSError):
                groups.add(os.tcgetpgrp(self._fd))
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGHUP)

    def kill_session(self) -> None:
        """SIGKILL every process still in the program's session (its jobs too)."""
        for pid in _session_members(self.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    # ---- exit

    async def wait(self) -> int:
        """Wait for the program to exit; return its Popen return code (negative: killed by a signal)."""
        return await asyncio.shield(self._exit)

    def _watch_exit(self) -> None:
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                pidfd = pidfd_open(self.pid)
            except OSError:
                pidfd = None
            if pidfd is not None:
                # A pidfd turns readable when the child exits: no thread, no SIGCHLD handler.
                self._loop.add_reader(pidfd, self._reap, pidfd)
                return
        waiter = self._loop.run_in_executor(None, self._proc.wait)
        waiter.add_done_callback(self._waited)

    def _waited(self, waiter: asyncio.Future[int]) -> None:
        if not self._exit.done():
            self._exit.set_result(waiter.result())

    def _reap(self, pidfd: int) -> None:
        self._loop.remove_reader(pidfd)
        os.close(pidfd)
        if not self._exit.done():
            self._exit.set_result(self._proc.wait())

    def close(self) -> None:
        """Close the master side; the program, if still there, sees a hangup."""
        self.pause_reading()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _session_members(sid: int) -> list[int]:
    """Process ids in session ``sid`` (Linux /proc; elsewhere just the leader's group).

    Called right after the leader exits, while its id still names the session: a new process could
    only reuse it as a session id by becoming a session leader with that very pid in between.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return [sid]
    members = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry.name)) == sid:
                    members.append(int(entry.name))
    return members
