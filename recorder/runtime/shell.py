"""A shell: one PTY named by a shellId, living across client connections (attachments)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from websockets.exceptions import ConnectionClosed

from recorder.logfmt import get_logger
from recorder.protocol import Channel, CloseCode, Resize, chunks, encode
from recorder.protocol import status as status_payload
from recorder.runtime.ptyproc import PtyProcess
from recorder.runtime.ring import RING_BUFFER_SIZE, RingBuffer

log = get_logger(__name__)

#: STDOUT bytes queued for an attached client beyond which the PTY is no longer read (backpressure).
OUTPUT_HIGH_WATER = 256 * 1024
#: Queued STDOUT bytes at or below which reading the PTY resumes.
OUTPUT_LOW_WATER = 64 * 1024
#: Seconds to wait, after the program exited, for the PTY's end of file (a background job may hold it open).
EOF_GRACE = 0.5
#: Seconds between SIGHUP and SIGKILL when a shell is ended.
TERMINATE_GRACE = 3.0
#: Seconds a detached shell lives without a client (the service's reconnect window is ~15 min).
IDLE_TIMEOUT = 15 * 60.0

KICK_REASON = "kicked by new connection"


class Peer(Protocol):
    """The client end an attachment sends to (a websockets ServerConnection)."""

    async def send(self, message: bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


class Attachment:
    """One client connection to a shell: an ordered outbox drained by a single sender task."""

    def __init__(self, peer: Peer, *, name: str = "") -> None:
        self._peer = peer
        self.name = name
        self._outbox: deque[tuple[int, bytes] | _Close] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        #: STDOUT bytes queued and not yet handed to the connection.
        self.pending_output = 0
        #: True once a close is queued or under way: nothing more is accepted.
        self.closing = False
        self.on_drained: Callable[[], None] | None = None

    def start(self) -> None:
        """Start the sender task."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"send {self.name}")

    async def join(self) -> None:
        """Wait until the sender task has finished (closed, or the connection is gone)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop the sender task once the connection is gone (a kick's close is left to finish)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._closer is not None:
            await self._closer

    def push(self, channel: int, payload: bytes = b"") -> None:
        """Queue one frame for the client."""
        if self.closing:
            return
        self._outbox.append((channel, payload))
        if channel == Channel.STDOUT:
            self.pending_output += len(payload)
        self._wakeup.set()

    def push_close(self, code: int, reason: str = "") -> None:
        """Close the connection once everything queued so far is sent."""
        if not self.closing:
            self.closing = True
            self._outbox.append(_Close(code, reason))
            self._wakeup.set()

    def close_now(self, code: int, reason: str = "") -> None:
        """Drop the queue and close at once, even while a send waits on a slow client."""
        if self._closer is None:
            self.closing = True
            self._outbox.clear()
            self.pending_output = 0
            self._closer = asyncio.get_running_loop().create_task(self._close(code, reason))

    def take_unsent_output(self) -> bytes:
        """Remove and return the STDOUT bytes not yet sent, in order."""
        output: list[bytes] = []
        rest: deque[tuple[int, bytes] | _Close] = deque()
        for item in self._outbox:
            if isinstance(item, tuple) and item[0] == Channel.STDOUT:
                output.append(item[1])
            else:
                rest.append(item)
        self._outbox = rest
        self.pending_output = 0
        return b"".join(output)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._peer.close(code, reason)

    async def _run(self) -> None:
        try:
            while True:
                if not self._outbox:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                item = self._outbox.popleft()
                if isinstance(item, _Close):
                    await self._peer.close(item.code, item.reason)
                    return
                channel, payload = item
                if channel == Channel.STDOUT:
                    self.pending_output -= len(payload)
                try:
                    await self._peer.send(encode(channel, payload))
                except ConnectionClosed:
                    # Not delivered: put it back so a detach hands it to the ring buffer, in order.
                    self._outbox.appendleft(item)
                    if channel == Channel.STDOUT:
                        self.pending_output += len(payload)
                    return
                if channel == Channel.STDOUT and self.on_drained is not None:
                    self.on_drained()
        except ConnectionClosed:
            return


def _exit_status(returncode: int) -> tuple[int, int | None]:
    """(exit code, signal) from a Popen return code; a signal-killed program exits 128+N."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


class Shell:
    """A program on a PTY; output goes to the attached client, or to a ring buffer while detached."""

    def __init__(
        self,
        shell_id: str,
        session_id: str,
        process: PtyProcess,
        *,
        buffer_size: int = RING_BUFFER_SIZE,
        idle_timeout: float = IDLE_TIMEOUT,
        terminate_grace: float = TERMINATE_GRACE,
        on_gone: Callable[[Shell], None] | None = None,
    ) -> None:
        self.shell_id = shell_id
        self.session_id = session_id
        self._process = process
        self._ring = RingBuffer(buffer_size)
        self._idle_timeout = idle_timeout
        self._terminate_grace = terminate_grace
        self._on_gone = on_gone
        self._loop = asyncio.get_running_loop()
        self._attachment: Attachment | None = None
        self._ever_attached = False
        self._termination: bytes | None = None
        self._eof = asyncio.Event()
        self._ended = asyncio.Event()
        self._idle: asyncio.TimerHandle | None = None
        self._ender: asyncio.Task[None] | None = None
        self._end_requested = False
        self._gone = False
        #: Times backpressure stopped reading the PTY for a slow client, and times it started again.
        self.pauses = 0
        self.resumes = 0
        process.start_reading(self._on_output, self._eof.set)
        self.lifecycle = self._loop.create_task(self._watch(), name=f"shell {shell_id}")

    @classmethod
    def spawn(
        cls,
        shell_id: str,
        session_id: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | Path | None = None,
        buffer_size: int = RING_BUFFER_SIZE,
        idle_timeout: float = IDLE_TIMEOUT,
        terminate_grace: float = TERMINATE_GRACE,
        on_gone: Callable[[Shell], None] | None = None,
    ) -> Shell:
        """Start ``argv`` on a new PTY as shell ``shell_id`` of runtime session ``session_id``."""
        process = PtyProcess.spawn(argv, env=env, cwd=cwd)
        log.info("shell.started", shell_id=shell_id, session_id=session_id, pid=process.pid)
        return cls(
            shell_id,
            session_id,
            process,
            buffer_size=buffer_size,
            idle_timeout=idle_timeout,
            terminate_grace=terminate_grace,
            on_gone=on_gone,
        )

    @property
    def pid(self) -> int:
        """The program's process id."""
        return self._process.pid

    @property
    def attached(self) -> bool:
        """True while a client is attached."""
        return self._attachment is not None

    @property
    def ended(self) -> bool:
        """True once the program exited and its output was collected."""
        return self._ended.is_set()

    @property
    def reading(self) -> bool:
        """True while the PTY is read (False while backpressure holds it)."""
        return self._process.reading

    @property
    def buffered(self) -> int:
        """Bytes in the ring buffer."""
        return len(self._ring)

    @property
    def pending_output(self) -> int:
        """STDOUT bytes queued for the attached client and not yet sent."""
        return self._attachment.pending_output if self._attachment is not None else 0

    # ---- clients

    def attach(self, att: Attachment) -> None:
        """Make ``att`` the shell's client, kicking any current one; queue the confirmation and replay."""
        reconnected = self._ever_attached
        self._ever_attached = True
        self._cancel_idle()
        old = self._attachment
        if old is not None:
            self._ring.write(old.take_unsent_output())
            old.close_now(CloseCode.KICKED, KICK_REASON)
            log.info("shell.kicked", shell_id=self.shell_id, session_id=self.session_id, client=old.name)
        self._attachment = att
        att.on_drained = self._on_drained
        att.push(Channel.STATUS, status_payload.confirmation(self.shell_id, reconnected=reconnected))
        if reconnected:
            data, dropped = self._ring.take()
            if data:
                for piece in chunks(data):
                    att.push(Channel.STDOUT, piece)
            if dropped:
                att.push(
                    Channel.STATUS,
                    status_payload.confirmation(self.shell_id, reconnected=True, bytes_dropped=dropped),
                )
        log.info(
            "shell.attached",
            shell_id=self.shell_id,
            session_id=self.session_id,
            client=att.name,
            reconnected=reconnected,
        )
        if self._termination is not None:
            self._deliver_end(att)
        else:
            self._apply_backpressure(att)

    def detach(self, att: Attachment) -> None:
        """``att``'s connection is gone: keep the shell running, its output going to the ring buffer."""
        if att is not self._attachment:
            return
        self._attachment = None
        self._ring.write(att.take_unsent_output())
        if self._gone:
            return
        log.info("shell.detached", shell_id=self.shell_id, session_id=self.session_id, client=att.name)
        if self.ended and self._end_requested:
            self._forget()
            return
        self._idle = self._loop.call_later(self._idle_timeout, self._expire)
        if not self.ended:
            self._process.resume_reading()

    # ---- input

    async def write(self, data: bytes) -> None:
        """Send keystrokes to the program (waits while the PTY's input buffer is full)."""
        if not self.ended:
            await self._process.write(data)

    def resize(self, size: Resize) -> None:
        """Set the PTY size (the program gets SIGWINCH)."""
        if not self.ended:
            self._process.resize(size.width, size.height)

    # ---- ending

    def end(self) -> asyncio.Task[None]:
        """End the shell (SIGHUP, then SIGKILL to its session after the grace period); idempotent."""
        self._end_requested = True
        if self._ender is None:
            self._ender = self._loop.create_task(self._terminate(), name=f"end shell {self.shell_id}")
        return self._ender

    async def _terminate(self) -> None:
        if not self._process.exited:
            self._process.hangup()
            try:
                await asyncio.wait_for(self._process.wait(), self._terminate_grace)
            except TimeoutError:
                log.warning("shell.killed", shell_id=self.shell_id, after=self._terminate_grace)
                self._process.kill_session()
        await self._ended.wait()

    async def _watch(self) -> None:
        returncode = await self._process.wait()
        if not self._eof.is_set():
            # Output written just before exit may still be in the kernel; EIO on the master marks its end.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._eof.wait(), EOF_GRACE)
        try:
            self._process.drain()
        except OSError as exc:
            log.warning("shell.drain_failed", shell_id=self.shell_id, error=str(exc))
        self._process.close()
        if self._end_requested:
            # Ending a shell ends its jobs too, as closing a terminal window does.
            self._process.kill_session()
        code, signum = _exit_status(returncode)
        self._termination = status_payload.exited(code, signal=signum)
        log.info("shell.exited", shell_id=self.shell_id, session_id=self.session_id, code=code, signal=signum)
        self._ended.set()
        att = self._attachment
        if att is not None and not att.closing:
            self._deliver_end(att)
        elif att is None and self._end_requested:
            self._forget()

    def _deliver_end(self, att: Attachment) -> None:
        assert self._termination is not None
        att.push(Channel.STATUS, self._termination)
        att.push_close(CloseCode.NORMAL, "shell exited")
        self._attachment = None
        self._forget()

    def _expire(self) -> None:
        self._idle = None
        if self._attachment is not None or self._gone:
            return
        log.info("shell.expired", shell_id=self.shell_id, session_id=self.session_id, idle=self._idle_timeout)
        self._forget()
        if not self.ended:
            self.end()

    def _forget(self) -> None:
        self._cancel_idle()
        if not self._gone:
            self._gone = True
            if self._on_gone is not None:
                self._on_gone(self)

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    # ---- output

    def _on_output(self, data: bytes) -> None:
        att = self._attachment
        if att is None or att.closing:
            self._ring.write(data)
            return
        att.push(Channel.STDOUT, data)
        self._apply_backpressure(att)

    def _on_drained(self) -> None:
        att = self._attachment
        if att is not None:
            self._apply_backpressure(att)

    def _apply_backpressure(self, att: Attachment) -> None:
        if att.pending_output >= OUTPUT_HIGH_WATER:
            if self._process.reading:
                self.pauses += 1
                self._process.pause_reading()
        elif att.pending_output <= OUTPUT_LOW_WATER and not self.ended and not self._process.reading:
            self.resumes += 1
            self._process.resume_reading()
