"""The interactive shell loop: pumps between the local terminal and a ShellClient.

Keys go out as STDIN frames, STDOUT comes back as raw bytes, Ctrl+] detaches, SIGWINCH sends a
RESIZE, and SIGTERM, SIGHUP or SIGINT detach (the remote shell keeps running). The terminal is in
raw mode only while the loop runs, and is restored on every way out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from recorder.client.session import (
    Confirmed,
    Diagnostic,
    Ending,
    Other,
    Output,
    ShellClient,
    ShellEvent,
)
from recorder.client.terminal import DEFAULT_SIZE, isatty, raw_mode, read_chunks, terminal_size, write_all
from recorder.errors import SessionClosed
from recorder.logfmt import get_logger
from recorder.protocol import Resize

log = get_logger(__name__)

#: Ctrl+] detaches, as in ``agentcore exec --it`` and telnet.
DETACH_KEY = 0x1D
#: Typed when a stdin that is not a terminal reaches end of file: the PTY's end-of-file key.
EOF_KEY = b"\x04"
#: Seconds between repeats of EOF_KEY after end of file, until the shell ends. One is not enough:
#: a Ctrl+D that reaches the PTY before bash's line editor starts (or while a command runs that does
#: not read it) turns into a NUL byte when the editor switches the terminal to raw mode.
EOF_REPEAT_INTERVAL = 0.5
#: Local signals that make the client detach and exit 128+N.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


@dataclass(frozen=True, slots=True)
class TerminalIO:
    """The local descriptors the loop uses; tests pass a pty pair's slave for all three."""

    stdin_fd: int = 0
    stdout_fd: int = 1
    stderr_fd: int = 2

    def size_fd(self) -> int | None:
        """The first of stdin, stdout, stderr that is a terminal (its size is the one to send)."""
        for fd in (self.stdin_fd, self.stdout_fd, self.stderr_fd):
            if isatty(fd):
                return fd
        return None


async def run_shell(
    client: ShellClient,
    io: TerminalIO | None = None,
    *,
    detach_key: int | None = DETACH_KEY,
    handle_signals: bool = True,
    eof_repeat_interval: float = EOF_REPEAT_INTERVAL,
) -> Ending:
    """Connect (unless connected), send the terminal size, then relay until the connection ends.

    With handle_signals (the main thread only), SIGWINCH sends a RESIZE and SIGTERM, SIGHUP or
    SIGINT detach; the Ending then carries the signal.
    """
    io = io or TerminalIO()
    if not client.connected:
        await client.connect()
    size = terminal_size(io.size_fd()) or DEFAULT_SIZE
    try:
        await client.resize(size)
    except SessionClosed:
        pass  # the events loop below reports why the connection ended
    with raw_mode(io.stdin_fd) as raw:
        loop = _ShellLoop(
            client, io, raw=raw, detach_key=detach_key, size=size, eof_repeat=eof_repeat_interval
        )
        return await loop.run(handle_signals)


class _ShellLoop:
    def __init__(
        self,
        client: ShellClient,
        io: TerminalIO,
        *,
        raw: bool,
        detach_key: int | None,
        size: Resize,
        eof_repeat: float,
    ) -> None:
        self.client = client
        self.eof_repeat = eof_repeat
        self.io = io
        self.raw = raw
        self.detach_key = None if detach_key is None else bytes((detach_key,))
        self.last_size = size
        self.at_line_start = True
        self.stop_signal: int | None = None
        self.terminal_gone = False
        self.announced_reattach = False
        self.resize_wanted = asyncio.Event()
        self.background: set[asyncio.Task[Any]] = set()

    async def run(self, handle_signals: bool) -> Ending:
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        if handle_signals:
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, self._on_stop_signal, sig)
                installed.append(sig)
            loop.add_signal_handler(signal.SIGWINCH, self.resize_wanted.set)
            installed.append(signal.SIGWINCH)
        pumps = [asyncio.create_task(self._pump_input()), asyncio.create_task(self._pump_resizes())]
        try:
            async for event in self.client.events():
                self._show(event)
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            for task in pumps + list(self.background):
                task.cancel()
            await asyncio.gather(*pumps, *self.background, return_exceptions=True)
            if self.client.connected:
                # Only reached when the loop failed unexpectedly; never end the shell by accident.
                await self.client.detach()
            if not self.at_line_start and isatty(self.io.stdout_fd):
                # Leave the cursor at the start of a line for the shell prompt and our messages.
                self._write(self.io.stdout_fd, b"\r\n" if self.raw else b"\n")
        ending = self.client.ending
        assert ending is not None
        if self.stop_signal is not None:
            ending = dataclasses.replace(ending, signal=self.stop_signal)
        return ending

    # ---- local to remote ----

    async def _pump_input(self) -> None:
        try:
            async for data in read_chunks(self.io.stdin_fd):
                if not data:
                    # Decided by the mode at the start: a hung-up terminal no longer says it is one.
                    if self.raw:
                        # The terminal hung up: nobody is left to type, keep the shell for later.
                        await self.client.detach()
                    else:
                        # A pipe ran dry: type Ctrl+D until the shell ends (see EOF_REPEAT_INTERVAL).
                        while True:
                            await self.client.send_input(EOF_KEY)
                            await asyncio.sleep(self.eof_repeat)
                    return
                if self.detach_key is not None:
                    at = data.find(self.detach_key)
                    if at >= 0:
                        await self.client.send_input(data[:at])
                        await self.client.detach()
                        return
                await self.client.send_input(data)
        except SessionClosed:
            return

    async def _pump_resizes(self) -> None:
        # One task sends every RESIZE, so a burst of SIGWINCH coalesces and sizes go out in order.
        while True:
            await self.resize_wanted.wait()
            self.resize_wanted.clear()
            size = terminal_size(self.io.size_fd())
            if size is None or size == self.last_size:
                continue
            self.last_size = size
            log.debug("client.resize", width=size.width, height=size.height)
            try:
                await self.client.resize(size)
            except SessionClosed:
                return

    def _on_stop_signal(self, sig: int) -> None:
        log.info("client.signal", signal=sig)
        if self.stop_signal is None:
            self.stop_signal = sig
        self._spawn(self.client.detach())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # ---- remote to local ----

    def _show(self, event: ShellEvent) -> None:
        if isinstance(event, Output):
            if self._write(self.io.stdout_fd, event.data) and event.data:
                self.at_line_start = event.data.endswith(b"\n")
        elif isinstance(event, Diagnostic):
            self._note(event.text)
        elif isinstance(event, Confirmed):
            status = event.status
            if status.reconnected and not self.announced_reattach:
                self.announced_reattach = True
                self._note(f"recorder: reattached to shell {status.shell_id}")
            if status.bytes_dropped:
                self._note(f"recorder: {status.bytes_dropped} bytes of output were dropped while detached")
        elif isinstance(event, Other):
            log.debug("client.frame_ignored", channel=event.frame.channel, size=len(event.frame.payload))
        # Terminated and Shutdown end the connection; run() reports them through the Ending.

    def _note(self, text: str) -> None:
        """Write a line to stderr, on a line of its own even in the middle of the shell's output."""
        newline = "\r\n" if self.raw else "\n"
        body = text.rstrip("\r\n").replace("\r\n", "\n").replace("\n", newline)
        prefix = "" if self.at_line_start else newline
        if self._write(self.io.stderr_fd, (prefix + body + newline).encode("utf-8", errors="replace")):
            self.at_line_start = True

    def _write(self, fd: int, data: bytes) -> bool:
        if self.terminal_gone:
            return False
        try:
            write_all(fd, data)
        except OSError as exc:
            # EPIPE or EIO: whoever read our output is gone. Keep the shell for a reattach.
            log.info("client.output_gone", error=str(exc))
            self.terminal_gone = True
            self._spawn(self.client.detach())
            return False
        return True
