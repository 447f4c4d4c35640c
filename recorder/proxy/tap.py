"""The recording tap: every relayed message goes to one writer per connection, off the relay path.

The relay hands each message to :meth:`RecordingTap.put` with its receive time. Messages wait in a
queue bounded in bytes; when the bound is hit the relay waits (backpressure), nothing is dropped.
A writer task takes batches (everything queued within ``flush_interval`` of the first item, or up
to ``batch_bytes``) and turns them into asciicast lines in a worker thread, then flushes the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from recorder.cast.decoder import StreamDecoder
from recorder.cast.model import CONTEXT_KEY, EXIT, INPUT, MARKER, OUTPUT, RESIZE, Header
from recorder.cast.writer import CastWriter
from recorder.errors import CastWriteError, ProtocolError
from recorder.logfmt import get_logger
from recorder.protocol import Channel, Resize
from recorder.protocol import status as status_mod

log = get_logger(__name__)

#: Bytes of relayed messages that may wait for the writer before the relay waits.
DEFAULT_MAX_BUFFER = 8 * 1024 * 1024
#: Data reaches the file at most this long after it was relayed.
DEFAULT_FLUSH_INTERVAL = 0.1
#: A batch is written early once it holds this much.
DEFAULT_BATCH_BYTES = 1024 * 1024
#: What a queued item costs besides its payload (bookkeeping), so empty frames are bounded too.
ITEM_OVERHEAD = 64


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
    ) -> None:
        if max_buffer < ITEM_OVERHEAD or flush_interval <= 0 or batch_bytes <= 0:
            raise ValueError("max_buffer, flush_interval and batch_bytes must be positive")
        self._file = io.FileIO(fd, "w", closefd=True)
        self._header = header
        self._writer = CastWriter(self._file, header, version=version)
        self._hash = hashlib.sha256()
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

    async def put(self, direction: Direction, message: bytes | str, at: float | None = None) -> None:
        """Queue one relayed message; waits while the buffer is full; raises once recording failed."""
        if self.failure is not None:
            raise RecordingFailed(f"recording failed: {self.failure}")
        t = time.monotonic() if at is None else at
        cost = len(message) + ITEM_OVERHEAD
        while self._queued_bytes + cost > self.max_buffer and self._queued_bytes > 0:
            self._has_room.clear()
            await self._has_room.wait()
            if self.failure is not None:
                raise RecordingFailed(f"recording failed: {self.failure}")
        self._enqueue(_Item(t, direction, message), cost)

    def marker(self, label: str, at: float | None = None) -> None:
        """Queue a marker from the proxy itself (attach, kick, shutdown); never waits."""
        if self.failure is None:
            t = time.monotonic() if at is None else at
            self._enqueue(_Item(t, None, label), len(label) + ITEM_OVERHEAD)

    def _enqueue(self, item: _Item, cost: int) -> None:
        self._queue.append(item)
        self._queued_bytes += cost
        self._not_empty.set()

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting for the writer (payloads plus per-item overhead)."""
        return self._queued_bytes

    async def close(self) -> RecordingResult:
        """Write what is queued, flush the decoders, fsync and close the file."""
        self._closing = True
        self._not_empty.set()
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
                await self._not_empty.wait()
                continue
            # Gather a batch: until flush_interval after the first item, or batch_bytes, or closing.
            deadline = self._queue[0].time + self.flush_interval
            while not self._closing and self._queued_bytes < self.batch_bytes:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._not_empty.clear()
                try:
                    await asyncio.wait_for(self._not_empty.wait(), remaining)
                except TimeoutError:
                    break
            batch = list(self._queue)
            self._queue.clear()
            cost = sum(len(i.message) + ITEM_OVERHEAD for i in batch)
            try:
                await asyncio.to_thread(self._write_batch, batch)
            except Exception as exc:  # noqa: BLE001 - any write failure ends recording
                self._fail(exc)
                return
            finally:
                self._queued_bytes -= cost
                self._has_room.set()

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
        self._write_line(self._writer.write_event(t, code, data))
        state.events += 1

    def _write_line(self, line: bytes) -> None:
        self._hash.update(line)
        self._size += len(line)

    def _ensure_header(self) -> None:
        if not self._header_written:
            self._header_written = True
            self._write_line(self._writer.write_header())

    def _write_batch(self, batch: list[_Item]) -> None:
        if not self._header_written:
            batch = self._size_header(batch)
            self._ensure_header()
        for item in batch:
            self._record(item)
        self._writer.flush()

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
            self._emit(item.time, MARKER, str(item.message))
            return
        message = item.message
        channel = self._count(message)
        if channel is None:
            kind = "text" if isinstance(message, str) else "empty"
            self._emit(item.time, MARKER, f"{kind} message from {_who(item.direction)}")
            return
        assert isinstance(message, bytes)
        payload = message[1:]
        if channel == Channel.STDOUT and item.direction is U2C:
            text = self._out.decode(payload)
            if text:
                self._emit(item.time, OUTPUT, text)
        elif channel == Channel.STDIN and item.direction is C2U:
            text = self._in.decode(payload)
            if text:
                self._emit(item.time, INPUT, text)
        elif channel == Channel.RESIZE and item.direction is C2U:
            try:
                size = Resize.parse(payload)
            except ProtocolError as exc:
                self._emit(item.time, MARKER, f"invalid resize from client: {exc}")
            else:
                self._emit(item.time, RESIZE, f"{size.width}x{size.height}")
        elif channel == Channel.STATUS and item.direction is U2C:
            self._record_status(item.time, payload)
        elif channel == Channel.STDERR:
            self._emit(item.time, MARKER, "stderr: " + payload.decode("utf-8", "replace").strip())
        elif channel == Channel.CLOSE:
            self._emit(item.time, MARKER, "platform close" if item.direction is U2C else "client close")

    def _record_status(self, t: float, payload: bytes) -> None:
        state = self._state
        try:
            info = status_mod.parse(payload)
        except ProtocolError as exc:
            self._emit(t, MARKER, f"invalid status from upstream: {exc}")
            return
        if isinstance(info, status_mod.Confirmation):
            if info.bytes_dropped is not None:
                state.bytes_dropped = info.bytes_dropped
                self._emit(t, MARKER, f"reconnect: {info.bytes_dropped} bytes dropped while detached")
            elif info.reconnected:
                state.reconnected = True
                self._emit(t, MARKER, "reconnect: buffered output follows")
            return
        state.termination_seen = True
        if info.internal_error:
            self._emit(t, MARKER, f"platform error: {info.message or 'internal error'}")
            return
        state.exit_code = info.exit_code
        if info.signal is not None:
            self._emit(t, MARKER, f"killed by signal {info.signal}")
        if info.exit_code is not None:
            self._emit(t, EXIT, str(info.exit_code))

    def _finish(self) -> RecordingResult:
        state = self._state
        if self.failure is None:
            try:
                self._ensure_header()
                tail = self._out.flush()
                if tail:
                    self._emit(self.start + state.last_time, OUTPUT, tail)
                tail = self._in.flush()
                if tail:
                    self._emit(self.start + state.last_time, INPUT, tail)
                self._writer.flush()
                os.fsync(self._file.fileno())
            except Exception as exc:  # noqa: BLE001 - reported through the result's failure
                self.failure = exc
                log.error("recording.finalise_failed", error=exc)
        try:
            self._file.close()
        except OSError as exc:
            self.failure = self.failure or exc
        counters = dict(state.counters)
        return RecordingResult(
            size=self._size,
            sha256=self._hash.hexdigest(),
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
        )


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
