"""The recording tap: every relayed message goes to one writer per connection, off the relay path.

The relay hands each message to :meth:`RecordingTap.put` with its receive time. Messages wait in a
queue bounded in bytes; when the bound is hit the relay waits (backpressure), nothing is dropped.
A writer task takes batches (everything queued within ``flush_interval`` of the first item, or up
to ``batch_bytes``) and turns them into asciicast lines on the process's batch writer thread
(:mod:`recorder.proxy.batches`, shared by every tap), then writes the batch's lines to the file in
one system call (a write per line cost more than everything else the tap does when many sessions
type at once). The writer task wakes once per batch, not per message.

Integrity: with a sidecar descriptor and a signing key, every line is folded into the hash chain of
:mod:`recorder.cast.integrity`; after a batch's data, a signed checkpoint goes to the sidecar, and
:meth:`RecordingTap.close` seals it. The first batch is checkpointed at once, the second at a
random point of the first interval (so sessions that began together do not all sign at once),
later lines at most ``checkpoint_interval`` seconds after the last checkpoint (even when no more
data comes): an Ed25519 signature per 100 ms batch was the largest cost of recording many typing
sessions. After a crash, at most that much recorded data lies past the last checkpoint (``verify``
says how much).
A batch that fails part-way is cut back to where it began (``ftruncate``), so what is on disk
always reads cleanly and verifies as a prefix: lines are folded into the chain only once they are
in the file, so a lost batch is wholly lost, never half-counted.

Failure policy: ``close`` (the default) reports the first write error, or a write that makes no
progress for ``stall_timeout`` seconds, through ``on_failure``; the caller ends the connection.
``continue`` keeps going: what could not be written is counted, and once writing works again a
marker ``recording gap: N bytes not recorded`` stands where it is missing; a final marker sums
the gaps (also in :attr:`RecordingResult.gap_bytes`).

Secrets (``mask_secrets``): input typed while the remote terminal does not echo it is masked,
judged from the output, because the proxy cannot see the remote terminal's settings. See
:class:`SecretMasker`: input typed after prompt-like output is held until its echo arrives or
``ECHO_WINDOW`` passes, then written with its original times; events after it are held with it,
so times stay in order and nothing is lost. Held input reaches the file at most ``ECHO_WINDOW``
later than the flush interval promises.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import os
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import IO, Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorder.cast.decoder import StreamDecoder
from recorder.cast.integrity import Chain
from recorder.cast.model import CONTEXT_KEY, EXIT, INPUT, MARKER, OUTPUT, RESIZE, Header
from recorder.cast.writer import CastWriter
from recorder.errors import CastWriteError, ProtocolError, WriterStalled
from recorder.logfmt import get_logger
from recorder.protocol import Channel, Resize
from recorder.protocol import status as status_mod
from recorder.proxy.batches import WRITER

log = get_logger(__name__)

#: Bytes of relayed messages that may wait for the writer before the relay waits.
DEFAULT_MAX_BUFFER = 8 * 1024 * 1024
#: Data reaches the file at most this long after it was relayed.
DEFAULT_FLUSH_INTERVAL = 0.1
#: A batch is written early once it holds this much.
DEFAULT_BATCH_BYTES = 1024 * 1024
#: What a queued item costs besides its payload (bookkeeping), so empty frames are bounded too.
ITEM_OVERHEAD = 64
#: Lines written are covered by a signed checkpoint at most this long (seconds) after the last one.
DEFAULT_CHECKPOINT_INTERVAL = 1.0
#: A write (one batch) that makes no progress for this long is a failure: a hung disk or mount.
WRITER_STALL_TIMEOUT = 5.0
#: Typed input after prompt-like output waits this long (seconds) for its echo before it is masked.
ECHO_WINDOW = 0.25
#: At most this many events wait on one echo decision; more decide it at once (masked).
MAX_HELD_EVENTS = 1000
#: Output characters kept to judge whether the last output was a prompt.
PROMPT_TAIL_CHARS = 512


class FailurePolicy(Enum):
    """What the tap does when the recording cannot be written."""

    CLOSE = "close"
    CONTINUE = "continue"


class Direction(Enum):
    """Which way a message went."""

    CLIENT_TO_UPSTREAM = "c2u"
    UPSTREAM_TO_CLIENT = "u2c"


C2U = Direction.CLIENT_TO_UPSTREAM
U2C = Direction.UPSTREAM_TO_CLIENT

#: Counter names, one per channel, in the index's column order.
CHANNEL_NAMES: dict[int, str] = {
    Channel.STDIN: "stdin",
    Channel.STDOUT: "stdout",
    Channel.STDERR: "stderr",
    Channel.STATUS: "status",
    Channel.RESIZE: "resize",
    Channel.HEARTBEAT: "heartbeat",
    Channel.CLOSE: "close",
}
COUNTER_NAMES = tuple(
    f"{kind}_{name}" for name in (*CHANNEL_NAMES.values(), "unknown") for kind in ("frames", "bytes")
)


class RecordingFailed(CastWriteError):
    """The recording can no longer be written; the connection must not go on unrecorded."""


@dataclass(slots=True)
class _Item:
    time: float
    direction: Direction | None  # None: a marker from the proxy itself
    message: bytes | str


@dataclass(slots=True)
class RecordingResult:
    """What the tap knows when the recording is finalised."""

    size: int
    sha256: str
    counters: dict[str, int]
    invalid_utf8: int
    exit_code: int | None
    termination_seen: bool
    reconnected: bool
    bytes_dropped: int | None
    cols: int
    rows: int
    duration: float
    events: int
    #: Payload bytes that were never written (``continue`` policy only).
    gap_bytes: int = 0
    #: Input characters masked as secrets.
    masked_chars: int = 0
    #: Whether the integrity sidecar was sealed.
    sealed: bool = False


@dataclass(slots=True)
class _State:
    """Everything the worker thread owns; only the worker thread touches it."""

    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTER_NAMES, 0))
    exit_code: int | None = None
    termination_seen: bool = False
    reconnected: bool = False
    bytes_dropped: int | None = None
    last_time: float = 0.0
    events: int = 0


class RecordingTap:
    """One connection's recording: a bounded queue in front of a single asciicast writer."""

    def __init__(
        self,
        fd: int,
        header: Header,
        *,
        version: int = 2,
        start: float | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        on_failure: Callable[[Exception], None] | None = None,
        chain_fd: int | None = None,
        signer: Ed25519PrivateKey | None = None,
        policy: FailurePolicy = FailurePolicy.CLOSE,
        stall_timeout: float = WRITER_STALL_TIMEOUT,
        mask_secrets: bool = False,
        checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
    ) -> None:
        if max_buffer < ITEM_OVERHEAD or flush_interval <= 0 or batch_bytes <= 0 or stall_timeout <= 0:
            raise ValueError("max_buffer, flush_interval, batch_bytes and stall_timeout must be positive")
        if checkpoint_interval < 0:
            raise ValueError("checkpoint_interval must not be negative")
        if (chain_fd is None) != (signer is None):
            raise ValueError("chain_fd and signer go together")
        self._file = io.FileIO(fd, "w", closefd=True)
        self._side = io.FileIO(chain_fd, "w", closefd=True) if chain_fd is not None else None
        self._chain = Chain(signer) if signer is not None else None
        self._side_size = 0
        self._side_started = False
        self.checkpoint_interval = checkpoint_interval
        #: When (time.monotonic) the next checkpoint may be taken; the first batch's at once.
        self._next_checkpoint = 0.0
        self._phased = False
        self.policy = policy
        self.stall_timeout = stall_timeout
        self._masker = SecretMasker() if mask_secrets else None
        self._wake_deadline: float | None = None
        self._stalled = False
        self._stuck: asyncio.Future[float | None] | None = None
        #: Bytes dropped since the last gap marker, and in all.
        self._dropped = 0
        self._gap_total = 0
        self._header = header
        # The writer formats lines into memory; _commit() writes each batch's lines at once.
        self._lines = _LineBuffer()
        self._writer = CastWriter(cast(IO[bytes], self._lines), header, version=version)
        # The chain hashes the whole file too; a second hash of every byte only without one.
        self._hash = hashlib.sha256() if self._chain is None else None
        self._size = 0
        self._header_written = False
        self.start = time.monotonic() if start is None else start
        self.max_buffer = max_buffer
        self.flush_interval = flush_interval
        self.batch_bytes = batch_bytes
        self._on_failure = on_failure
        self._queue: deque[_Item] = deque()
        self._queued_bytes = 0
        self._not_empty = asyncio.Event()
        # Set when a gathering batch must be written before its interval is up (full, closing).
        self._write_now = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()
        self._closing = False
        self.failure: Exception | None = None
        self._out = StreamDecoder()
        self._in = StreamDecoder()
        self._state = _State()
        self._task: asyncio.Task[None] | None = None

    # -- the relay side -------------------------------------------------------------------

    def begin(self) -> None:
        """Start the writer task."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="recording-writer")

    def offer(self, direction: Direction, message: bytes, at: float) -> bool:
        """Queue one relayed message if that needs no wait and no decision; False leaves it to put().

        The relay's fast hop (``recorder.proxy.hop``) calls this inside a connection's receive
        callback, where nothing can wait: False when the buffer has no room for the message,
        the writer is stalled or recording has failed, and nothing was queued or counted.
        """
        cost = len(message) + ITEM_OVERHEAD
        if self.failure is not None or self._stalled or not self._has_room_for(cost):
            return False
        self._enqueue(_Item(at, direction, message), cost)
        return True

    def _has_room_for(self, cost: int) -> bool:
        # An item larger than the whole bound still goes in, alone.
        return self._queued_bytes + cost <= self.max_buffer or self._queued_bytes == 0

    async def put(self, direction: Direction, message: bytes | str, at: float | None = None) -> None:
        """Queue one relayed message; waits while the buffer is full; raises once recording failed."""
        if self.failure is not None:
            raise RecordingFailed(f"recording failed: {self.failure}")
        t = time.monotonic() if at is None else at
        cost = len(message) + ITEM_OVERHEAD
        while not self._has_room_for(cost) and not self._stalled:
            self._has_room.clear()
            await self._has_room.wait()
            if self.failure is not None:
                raise RecordingFailed(f"recording failed: {self.failure}")
        if self._stalled:
            # ``continue`` policy with a stuck writer: the session goes on, this message is a gap.
            self._dropped += len(message)
            self._gap_total += len(message)
            return
        self._enqueue(_Item(t, direction, message), cost)

    def marker(self, label: str, at: float | None = None) -> None:
        """Queue a marker from the proxy itself (attach, kick, shutdown); never waits."""
        if self.failure is None and not self._stalled:
            t = time.monotonic() if at is None else at
            self._enqueue(_Item(t, None, label), len(label) + ITEM_OVERHEAD)

    def _enqueue(self, item: _Item, cost: int) -> None:
        self._queue.append(item)
        self._queued_bytes += cost
        self._not_empty.set()
        if self._queued_bytes >= self.batch_bytes:
            self._write_now.set()

    @property
    def stalled(self) -> bool:
        """True while a write is stuck past ``stall_timeout`` (``continue`` policy: input is dropped)."""
        return self._stalled

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting for the writer (payloads plus per-item overhead)."""
        return self._queued_bytes

    async def close(self) -> RecordingResult:
        """Write what is queued, flush the decoders, fsync and close the file."""
        self._closing = True
        self._not_empty.set()
        self._write_now.set()
        if self._task is not None:
            await self._task
        return await asyncio.to_thread(self._finish)

    # -- the writer side --------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._not_empty.clear()
                if self._wake_deadline is None:
                    await self._not_empty.wait()
                    continue
                # Held input or a checkpoint falls due: wake up then, to decide, write and sign.
                wait = max(0.0, self._wake_deadline - loop.time())
                try:
                    await asyncio.wait_for(self._not_empty.wait(), wait)
                    continue
                except TimeoutError:
                    pass
            else:
                # Gather a batch: until flush_interval after the first item, or batch_bytes, or
                # closing. One timer per batch; put() wakes the task early only when it is full.
                deadline = self._queue[0].time + self.flush_interval
                if not self._closing and self._queued_bytes < self.batch_bytes and deadline > loop.time():
                    self._write_now.clear()
                    timer = loop.call_at(deadline, self._write_now.set)
                    try:
                        await self._write_now.wait()
                    finally:
                        timer.cancel()
            batch = list(self._queue)
            self._queue.clear()
            if not await self._write(batch):
                return

    async def _write(self, batch: list[_Item]) -> bool:
        """Write one batch in the worker thread; False once the recording has failed for good."""
        cost = sum(len(i.message) + ITEM_OVERHEAD for i in batch)
        carried = self._dropped
        if carried:
            self._dropped = 0
            at = batch[0].time if batch else time.monotonic()
            batch.insert(0, _Item(at, None, f"recording gap: {carried} bytes not recorded"))
        # The process's batch writer (one thread for every tap), awaited with a timeout: no task,
        # shield or wait_for per batch, and no executor hand-off per batch (see proxy.batches).
        work = WRITER.submit(self._write_batch, batch, hurry=cost >= self.batch_bytes or self._closing)
        try:
            done, _ = await asyncio.wait((work,), timeout=self.stall_timeout)
            if done:
                self._wake_deadline = work.result()
            else:
                # This batch waited its whole bound, in a write that does not return or queued
                # behind one: when the thread has been in one job for half the bound, the other
                # recordings get a new thread (a job's wait counts its time in the queue too).
                WRITER.abandon_stuck(self.stall_timeout / 2)
                stall = WriterStalled(self.stall_timeout)
                if self.policy is FailurePolicy.CLOSE:
                    # The thread cannot be stopped; it ends when its write returns, and what it
                    # raises then is of no further use (the recording has already failed).
                    self._stuck = work
                    work.add_done_callback(_discard_outcome)
                    self._fail(stall)
                    return False
                log.error("recording.stalled", error=stall)
                self._stalled = True
                self._has_room.set()
                try:
                    self._wake_deadline = await work
                finally:
                    self._stalled = False
        except Exception as exc:  # noqa: BLE001 - any write failure ends recording (or is a gap)
            if self.policy is FailurePolicy.CLOSE:
                self._fail(exc)
                return False
            lost = sum(len(i.message) for i in batch if i.direction is not None)
            self._dropped += carried + lost
            self._gap_total += lost
            log.error("recording.gap", error=exc, bytes=self._dropped)
        self._queued_bytes -= cost
        self._has_room.set()
        return True

    def _fail(self, exc: Exception) -> None:
        self.failure = exc
        self._queue.clear()
        self._queued_bytes = 0
        self._has_room.set()
        log.error("recording.failed", error=exc)
        if self._on_failure is not None:
            self._on_failure(exc)

    def _emit(self, t: float, code: str, data: str) -> None:
        state = self._state
        t = max(t - self.start, state.last_time)  # times never go back
        state.last_time = t
        self._writer.write_event(t, code, data)
        state.events += 1

    def _event(self, t: float, code: str, data: str) -> None:
        """An event for the file, through the secret masker when it is on."""
        if self._masker is None:
            self._emit(t, code, data)
            return
        for ev in self._masker.feed(t, code, data):
            self._emit(*ev)

    def _commit(self) -> None:
        """Write the lines formatted since the last call in one go, then fold them into the hashes.

        On a failure the file is cut back to where the batch began and nothing of it is counted.
        """
        lines = self._lines.take()
        if not lines:
            return
        data = b"".join(lines)
        _write_all(self._file, data, "recording")
        self._size += len(data)
        if self._chain is not None:
            add = self._chain.add
            for line in lines:
                add(line)
        else:
            assert self._hash is not None
            self._hash.update(data)

    def _file_sha256(self) -> str:
        if self._chain is not None:
            return self._chain.sha256
        assert self._hash is not None
        return self._hash.hexdigest()

    def _write_side(self, data: bytes) -> None:
        assert self._side is not None
        _write_all(self._side, data, "integrity sidecar")
        self._side_size += len(data)

    def _checkpoint(self, *, final: bool = False) -> None:
        """Signed checkpoint of the lines written since the last one, after their data."""
        chain = self._chain
        if chain is None or self._side is None:
            return
        if not self._side_started:
            self._write_side(chain.header_record())
            self._side_started = True
        now = time.monotonic()
        if final or (chain.pending and now >= self._next_checkpoint):
            self._write_side(chain.checkpoint(final=final))
            chain.commit()
            interval = self.checkpoint_interval
            if not self._phased:
                # The second checkpoint comes at a random point of the first interval: sessions
                # that began together (a proxy restart, a load test) do not all sign at once.
                interval *= random.random()
                self._phased = True
            self._next_checkpoint = now + interval

    def _wake_at(self) -> float | None:
        """When the writer must run again with no new data: held input or a checkpoint falls due."""
        due = [self._masker.deadline] if self._masker is not None else []
        if self._chain is not None and self._chain.pending:
            due.append(self._next_checkpoint)
        return min((d for d in due if d is not None), default=None)

    def _ensure_header(self) -> None:
        if not self._header_written:
            self._writer.write_header()
            self._header_written = True

    def _write_batch(self, batch: list[_Item]) -> float | None:
        """Worker thread: one batch to the file, then a checkpoint when due; returns when to run again."""
        try:
            if not self._header_written:
                batch = self._size_header(batch)
                self._ensure_header()
            for item in batch:
                self._record(item)
            if self._masker is not None:
                for ev in self._masker.tick(time.monotonic()):
                    self._emit(*ev)
            self._commit()
            try:
                self._checkpoint()
            except CastWriteError as exc:
                if self.policy is FailurePolicy.CLOSE:
                    raise
                # The data is in the file: no gap. The next checkpoint covers these lines too.
                self._rewind()
                log.error("recording.checkpoint_failed", error=exc)
        except Exception:
            self._lines.take()  # a batch that failed while being formatted is not written at all
            self._rewind()
            raise
        return self._wake_at()

    def _rewind(self) -> None:
        """Cut both files back to their last whole line, so a failed batch leaves no torn line."""
        for f, size in ((self._file, self._size), (self._side, self._side_size)):
            if f is None or f.closed:
                continue
            try:
                os.ftruncate(f.fileno(), size)
            except OSError as exc:
                log.error("recording.rewind_failed", error=exc)

    def _size_header(self, batch: list[_Item]) -> list[_Item]:
        """Size the header from a RESIZE that comes before any input or output, instead of an event."""
        for i, item in enumerate(batch):
            if item.direction is None or isinstance(item.message, str):
                continue
            channel = _channel(item.message)
            if item.direction is C2U and channel == Channel.RESIZE:
                try:
                    size = Resize.parse(item.message[1:])
                except ProtocolError:
                    return batch
                self._header.width, self._header.height = size.width, size.height
                self._count(item.message)
                return batch[:i] + batch[i + 1 :]
            if channel in (Channel.STDOUT, Channel.STDIN):
                return batch
        return batch

    def _count(self, message: bytes | str) -> int | None:
        counters = self._state.counters
        if isinstance(message, str) or not message:
            counters["frames_unknown"] += 1
            counters["bytes_unknown"] += len(message)
            return None
        channel = message[0]
        name = CHANNEL_NAMES.get(channel, "unknown")
        counters["frames_" + name] += 1
        counters["bytes_" + name] += len(message) - 1
        return channel

    def _record(self, item: _Item) -> None:
        if item.direction is None:
            self._event(item.time, MARKER, str(item.message))
            return
        message = item.message
        channel = self._count(message)
        if channel is None:
            kind = "text" if isinstance(message, str) else "empty"
            self._event(item.time, MARKER, f"{kind} message from {_who(item.direction)}")
            return
        assert isinstance(message, bytes)
        payload = message[1:]
        if channel == Channel.STDOUT and item.direction is U2C:
            text = self._out.decode(payload)
            if text:
                self._event(item.time, OUTPUT, text)
        elif channel == Channel.STDIN and item.direction is C2U:
            text = self._in.decode(payload)
            if text:
                self._event(item.time, INPUT, text)
        elif channel == Channel.RESIZE and item.direction is C2U:
            try:
                size = Resize.parse(payload)
            except ProtocolError as exc:
                self._event(item.time, MARKER, f"invalid resize from client: {exc}")
            else:
                self._event(item.time, RESIZE, f"{size.width}x{size.height}")
        elif channel == Channel.STATUS and item.direction is U2C:
            self._record_status(item.time, payload)
        elif channel == Channel.STDERR:
            self._event(item.time, MARKER, "stderr: " + payload.decode("utf-8", "replace").strip())
        elif channel == Channel.CLOSE:
            self._event(item.time, MARKER, "platform close" if item.direction is U2C else "client close")

    def _record_status(self, t: float, payload: bytes) -> None:
        state = self._state
        try:
            info = status_mod.parse(payload)
        except ProtocolError as exc:
            self._event(t, MARKER, f"invalid status from upstream: {exc}")
            return
        if isinstance(info, status_mod.Confirmation):
            if info.bytes_dropped is not None:
                state.bytes_dropped = info.bytes_dropped
                self._event(t, MARKER, f"reconnect: {info.bytes_dropped} bytes dropped while detached")
            elif info.reconnected:
                state.reconnected = True
                self._event(t, MARKER, "reconnect: buffered output follows")
            return
        state.termination_seen = True
        if info.internal_error:
            self._event(t, MARKER, f"platform error: {info.message or 'internal error'}")
            return
        state.exit_code = info.exit_code
        if info.signal is not None:
            self._event(t, MARKER, f"killed by signal {info.signal}")
        if info.exit_code is not None:
            self._event(t, EXIT, str(info.exit_code))

    def _finish(self) -> RecordingResult:
        state = self._state
        sealed = False
        if self.failure is None:
            try:
                self._ensure_header()
                end = self.start + state.last_time
                tail = self._out.flush()
                if tail:
                    self._event(end, OUTPUT, tail)
                tail = self._in.flush()
                if tail:
                    self._event(end, INPUT, tail)
                if self._masker is not None:
                    for ev in self._masker.flush():
                        self._emit(*ev)
                if self._dropped:
                    self._emit(end, MARKER, f"recording gap: {self._dropped} bytes not recorded")
                    self._dropped = 0
                if self._gap_total:
                    self._emit(end, MARKER, f"recording gaps: {self._gap_total} bytes in all not recorded")
                self._commit()
                _fsync(self._file)
                if self._side is not None:
                    self._checkpoint(final=True)
                    _fsync(self._side)
                    sealed = True
            except Exception as exc:  # noqa: BLE001 - reported through the result's failure
                self._lines.take()
                self._rewind()
                self.failure = exc
                log.error("recording.finalise_failed", error=exc)
        for f in (self._file, self._side):
            if f is None:
                continue
            try:
                f.close()
            except OSError as exc:
                self.failure = self.failure or exc
        counters = dict(state.counters)
        return RecordingResult(
            size=self._size,
            sha256=self._file_sha256(),
            counters=counters,
            invalid_utf8=self._out.invalid_count + self._in.invalid_count,
            exit_code=state.exit_code,
            termination_seen=state.termination_seen,
            reconnected=state.reconnected,
            bytes_dropped=state.bytes_dropped,
            cols=self._header.width,
            rows=self._header.height,
            duration=state.last_time,
            events=state.events,
            gap_bytes=self._gap_total,
            masked_chars=self._masker.masked_chars if self._masker is not None else 0,
            sealed=sealed,
        )


def _write_all(f: io.FileIO, data: bytes, what: str) -> None:
    """Write all of ``data``; a raw file may take less than asked (a signal, a nearly full disk)."""
    try:
        view = memoryview(data)
        while view:
            written = f.write(view)
            if not written:
                raise CastWriteError(f"{what} accepted no bytes (non-blocking file?)")
            view = view[written:]
    except OSError as exc:
        raise CastWriteError(f"cannot write {what}: {exc.strerror or exc}") from exc


class _LineBuffer:
    """The CastWriter's file: formatted lines wait here until the tap writes them in one call."""

    def __init__(self) -> None:
        self._lines: list[bytes] = []

    def write(self, data: bytes | memoryview) -> int:
        self._lines.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to do: the tap writes the lines (see RecordingTap._commit)."""

    def close(self) -> None:
        """Nothing to do: the tap owns the real file."""

    def take(self) -> list[bytes]:
        lines, self._lines = self._lines, []
        return lines


def _discard_outcome(future: asyncio.Future[float | None]) -> None:
    if not future.cancelled():
        future.exception()


def _fsync(f: io.FileIO) -> None:
    try:
        os.fsync(f.fileno())
    except OSError as exc:
        # A pipe or character device cannot be synced; anything else is a real failure.
        if exc.errno != errno.EINVAL:
            raise


def _channel(message: bytes | str) -> int | None:
    if isinstance(message, str) or not message:
        return None
    return message[0]


def _who(direction: Direction) -> str:
    return "client" if direction is C2U else "upstream"


def context_header(version: int, width: int, height: int, timestamp: int, context: dict[str, Any]) -> Header:
    """A recording header carrying the connection context where players ignore it."""
    return Header(
        version=version,
        width=width,
        height=height,
        timestamp=timestamp,
        env={"TERM": "xterm-256color"},
        extra={CONTEXT_KEY: context},
    )


_ENDERS = frozenset("\r\n\x03\x04")
# A prompt for a secret: names one, or ends like a question ("Password: ", "Enter PIN: ").
_PROMPT = re.compile(r"(?i)(password|passphrase|passcode|\bpin\b)|:\s*$")
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.")

Ev = tuple[float, str, str]


def _printable(data: str) -> str:
    return "".join(c for c in data if c >= " " and c != "\x7f")


class SecretMasker:
    """Masks typed input the remote terminal did not echo, judged from the output (sans I/O).

    After prompt-like output (its last line names a password, passphrase, passcode or PIN, or
    ends with ``:``), an ``i`` event with printable characters is held, with every event after it,
    until either its text comes back in the output (echoed: written as typed) or ``window``
    seconds pass without that (a secret: its printable characters become ``*`` until Enter,
    Ctrl-C or Ctrl-D). Times are event times; :meth:`tick` decides with the clock when nothing
    else arrives. Held events come out in their original order and with their original times.
    """

    def __init__(self, window: float = ECHO_WINDOW, max_held: int = MAX_HELD_EVENTS) -> None:
        self.window = window
        self.max_held = max_held
        self.masked_chars = 0
        self._tail = ""
        self._held: list[Ev] = []
        self._since: float | None = None
        self._echo = ""
        self._secret = False
        self._alternate = False

    @property
    def deadline(self) -> float | None:
        """When the held input is decided without an echo, if input is held."""
        return None if self._since is None else self._since + self.window

    def feed(self, t: float, code: str, data: str) -> list[Ev]:
        """One event in; the events that may be written now out, in order."""
        if self._since is not None:
            if t > self._since + self.window:
                return self._decide(masked=True) + self.feed(t, code, data)
            self._held.append((t, code, data))
            if code == OUTPUT:
                self._echo = (self._echo + data)[-PROMPT_TAIL_CHARS:]
                typed = _printable(_line_of(self._held[0][2]))
                if typed and typed in _ESCAPES.sub("", self._echo):
                    return self._decide(masked=False)
            if len(self._held) > self.max_held:
                return self._decide(masked=True)
            return []
        return self._process(t, code, data, decided=False)

    def tick(self, now: float) -> list[Ev]:
        """Decide held input whose echo window has passed by ``now``."""
        if self._since is not None and now > self._since + self.window:
            return self._decide(masked=True)
        return []

    def flush(self) -> list[Ev]:
        """At the end: held input that was never echoed is masked, everything held comes out."""
        out: list[Ev] = []
        # Deciding replays the held events, and one of them may start a new hold: repeat.
        while self._since is not None:
            out += self._decide(masked=True)
        return out

    def _decide(self, *, masked: bool) -> list[Ev]:
        held, self._held, self._since, self._echo = self._held, [], None, ""
        if masked:
            self._secret = True
        out = self._process(*held[0], decided=True)
        for ev in held[1:]:
            out += self.feed(*ev)
        return out

    def _process(self, t: float, code: str, data: str, *, decided: bool) -> list[Ev]:
        if code == OUTPUT:
            self._tail = (self._tail + data)[-PROMPT_TAIL_CHARS:]
            # "?" is found at memchr speed; the full searches are slow on output full of escapes.
            if "?" in data and (_ALT_ON in data or _ALT_OFF in data):
                self._alternate = data.rfind(_ALT_ON) > data.rfind(_ALT_OFF)
            if self._secret and _SHELL_PROMPT in data:
                self._secret = False  # a new shell prompt: whatever was typed before is over
            return [(t, code, data)]
        if code != INPUT:
            return [(t, code, data)]
        if self._secret:
            return self._mask(t, data)
        # A full-screen program's own prompts (less's ':', vim's command line) are not passwords.
        if not decided and not self._alternate and _printable(_line_of(data)) and self._prompt_like():
            self._held, self._since, self._echo = [(t, code, data)], t, ""
            return []
        return [(t, code, data)]

    def _mask(self, t: float, data: str) -> list[Ev]:
        line = _line_of(data)
        masked = "".join("*" if c >= " " and c != "\x7f" else c for c in line)
        self.masked_chars += sum(1 for c in masked if c == "*")
        out: list[Ev] = [(t, INPUT, masked)]
        if len(line) < len(data) or (line and line[-1] in _ENDERS):
            self._secret = False
            rest = data[len(line) :]
            if rest:
                out += self._process(t, INPUT, rest, decided=False)
        return out

    def _prompt_like(self) -> bool:
        tail = _ESCAPES.sub("", self._tail) if "\x1b" in self._tail else self._tail
        last = tail.replace("\r", "\n").rsplit("\n", 1)[-1]
        # Cheap tests first: this runs for every typed key, and the case-blind search over a long
        # typed line cost more than all the rest of recording the key. casefold() keeps what the
        # (?i) search would match (it folds the long s and the Kelvin sign too).
        if last.rstrip().endswith(":"):
            return True
        folded = last.casefold()
        return ("pass" in folded or "pin" in folded) and _PROMPT.search(last) is not None


#: The alternate screen (full-screen programs) on and off, and the OSC 133 prompt-start mark.
_ALT_ON = "\x1b[?1049h"
_ALT_OFF = "\x1b[?1049l"
_SHELL_PROMPT = "\x1b]133;A"


def _line_of(data: str) -> str:
    """``data`` up to and including its first Enter, Ctrl-C or Ctrl-D (all of it if none)."""
    for i, c in enumerate(data):
        if c in _ENDERS:
            return data[: i + 1]
    return data
