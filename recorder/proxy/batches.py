"""One thread runs every recording's batch writes in the process, a tick of batches per wake-up.

Each tap used to hand each batch to the event loop's default executor: with hundreds of sessions
typing, that is thousands of thread hand-offs a second (a wake-up, two GIL transfers and the
executor's futures each), and they cost the proxy more than formatting and writing the batches.
Here the event loop appends a job to a queue and sets an event only when the thread is waiting
for one; the thread runs every job queued, then sleeps ``tick`` seconds so that the next wake-up
finds many; finished jobs are handed back in one loop callback per wake-up, not one per job.

A write can hang (a dead NFS mount): the tap gives up on its job after its stall timeout and
calls :meth:`BatchWriter.abandon_stuck`. When the thread has been inside one job for the time
given, it is left to finish on its own (its outcome still reaches its future, and the thread ends
then) and a new thread takes the queue over, so one hung file does not stop the other recordings.
At most one thread is left behind per timed-out batch.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

#: Seconds the thread sleeps after a round of jobs, so that one wake-up serves many.
DEFAULT_TICK = 0.005
#: A thread with no job for this long ends; the next job starts another.
IDLE_EXIT = 30.0
#: The proxy process's interpreter switch interval (seconds; Python's default is 0.005). The
#: writer thread lets go of the interpreter lock in every write and hash and takes it straight
#: back, and the event loop, woken too late to take it, waits out the whole interval before it
#: may relay the next message (the convoy effect). With a tenth of it, 200 MB bursts through
#: the proxy kept up better in three runs of paired bursts (median proxied/direct 1.04, 0.96,
#: 0.97 against 0.90, 0.89, 0.95 for the default, same CPU per burst): small next to this
#: machine's noise, but in the same direction each time. ``recorder serve`` sets it.
SWITCH_INTERVAL = 0.0005

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[Any], Any], Any]
_Done = tuple["asyncio.Future[Any]", Any, BaseException | None]


class BatchWriter:
    """Runs ``fn(arg)`` jobs on one thread; :meth:`submit` returns an asyncio future of the result."""

    def __init__(self, tick: float = DEFAULT_TICK) -> None:
        if tick < 0:
            raise ValueError("tick must not be negative")
        self.tick = tick
        self._lock = threading.Lock()
        self._jobs: deque[_Job] = deque()
        self._wake = threading.Event()
        #: Cuts the thread's tick short: a full batch (a burst of output) waits for no tick.
        self._hurry = threading.Event()
        #: The generation of the thread that owns the queue; None when no thread runs.
        self._owner: int | None = None
        self._generation = 0
        #: When the owning thread began its current job (time.monotonic), None between jobs.
        self._busy_since: float | None = None
        self._done: dict[asyncio.AbstractEventLoop, list[_Done]] = {}

    def submit(self, fn: Callable[[Any], Any], arg: Any, *, hurry: bool = False) -> asyncio.Future[Any]:
        """Queue ``fn(arg)``; the returned future (of the running loop) gets its result or error.

        ``hurry``: run it without waiting for the end of the thread's tick (a full batch).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.append((loop, future, fn, arg))
        if self._owner is None:
            with self._lock:
                if self._owner is None:
                    self._start()
        if not self._wake.is_set():
            self._wake.set()
        if hurry and not self._hurry.is_set():
            self._hurry.set()
        return future

    def abandon_stuck(self, after: float) -> bool:
        """If the thread has been in one job for ``after`` seconds, hand the queue to a new thread."""
        with self._lock:
            since = self._busy_since
            if self._owner is None or since is None or time.monotonic() - since < after:
                return False
            self._busy_since = None
            self._start()
        self._wake.set()
        return True

    @property
    def threads_started(self) -> int:
        """How many threads have owned the queue so far (one more after each abandoned one)."""
        return self._generation

    def _start(self) -> None:
        """With the lock held: a new thread owns the queue from now on."""
        self._generation += 1
        self._owner = self._generation
        threading.Thread(
            target=self._work, args=(self._generation,), name="recording-writer", daemon=True
        ).start()

    def _work(self, me: int) -> None:
        jobs = self._jobs
        while True:
            if not self._wake.wait(IDLE_EXIT):
                with self._lock:
                    if self._owner == me and not jobs:
                        self._owner = None
                        return
                continue
            self._wake.clear()
            while jobs:
                try:
                    loop, future, fn, arg = jobs.popleft()
                except IndexError:  # a new owner took the last one
                    break
                self._busy_since = time.monotonic()
                try:
                    self._finished(loop, future, fn(arg), None)
                except BaseException as exc:  # noqa: BLE001 - handed to the job's future
                    self._finished(loop, future, None, exc)
                if self._owner != me:
                    return  # abandoned while in that job: a newer thread owns the queue
                self._busy_since = None
            if self.tick and self._hurry.wait(self.tick):
                self._hurry.clear()

    def _finished(
        self,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
        result: Any,
        exc: BaseException | None,
    ) -> None:
        with self._lock:
            waiting = self._done.get(loop)
            if waiting is not None:
                waiting.append((future, result, exc))
                return  # a callback is already on its way to that loop
            self._done[loop] = [(future, result, exc)]
        try:
            loop.call_soon_threadsafe(self._settle, loop)
        except RuntimeError:  # the loop is closed: nobody waits for these any more
            with self._lock:
                self._done.pop(loop, None)

    def _settle(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            finished = self._done.pop(loop, [])
        for future, result, exc in finished:
            if future.done():
                continue
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)


#: The process's writer: every tap's batches go through it.
WRITER = BatchWriter()
