"""The process's batch writer thread: results come back in order, and a hung job stops no one else."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from recorder.errors import WriterStalled
from recorder.protocol import Channel, encode
from recorder.proxy.batches import BatchWriter
from recorder.proxy.tap import U2C, RecordingFailed, RecordingTap, context_header
from tests.procs import until


async def test_results_and_errors_reach_each_jobs_future_in_order() -> None:
    writer = BatchWriter()
    ran: list[int] = []

    def job(n: int) -> int:
        ran.append(n)
        if n == 3:
            raise ValueError("three")
        return n * n

    futures = [writer.submit(job, n) for n in range(6)]
    done = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 10)
    assert ran == list(range(6))
    assert done[:3] == [0, 1, 4] and done[4:] == [16, 25]
    assert isinstance(done[3], ValueError) and str(done[3]) == "three"
    assert writer.threads_started == 1


async def test_one_wake_up_serves_every_job_queued_meanwhile() -> None:
    writer = BatchWriter(tick=0.05)
    threads: set[int] = set()

    def job(n: int) -> int:
        threads.add(threading.get_ident())
        return n

    first = await asyncio.wait_for(writer.submit(job, 0), 10)
    many = [writer.submit(job, n) for n in range(1, 200)]
    assert first == 0 and await asyncio.wait_for(asyncio.gather(*many), 10) == list(range(1, 200))
    # All on the one thread, which is not the event loop's.
    assert len(threads) == 1 and threading.get_ident() not in threads


async def test_a_hung_job_is_left_behind_and_a_new_thread_takes_the_queue() -> None:
    writer = BatchWriter(tick=0)
    release = threading.Event()
    hung = writer.submit(lambda _: release.wait(30), None)
    behind = writer.submit(lambda n: n + 1, 41)
    await until(lambda: writer._busy_since is not None, 10, "the hung job to start")
    await asyncio.sleep(0.2)  # busy for longer than the 0.1 s asked below
    assert not hung.done() and not behind.done()
    assert not writer.abandon_stuck(after=10)  # not stuck for that long yet
    assert writer.abandon_stuck(after=0.1)
    assert await asyncio.wait_for(behind, 10) == 42
    assert writer.threads_started == 2
    release.set()  # the old thread's job ends: its outcome still reaches its future
    assert await asyncio.wait_for(hung, 10) is True
    assert await asyncio.wait_for(writer.submit(lambda n: n, 7), 10) == 7
    assert writer.threads_started == 2


async def test_nothing_to_abandon_while_idle() -> None:
    writer = BatchWriter()
    assert not writer.abandon_stuck(after=0)
    await asyncio.wait_for(writer.submit(lambda n: n, 1), 10)
    await asyncio.sleep(0.05)
    assert not writer.abandon_stuck(after=0)


def test_a_negative_tick_is_refused() -> None:
    with pytest.raises(ValueError, match="tick"):
        BatchWriter(tick=-1)


async def test_a_recording_on_a_hung_file_fails_while_another_keeps_recording(tmp_path: Path) -> None:
    fifo = tmp_path / "stuck"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    header = context_header(2, 80, 24, 0, {})
    failures: list[Exception] = []
    stuck = RecordingTap(
        os.open(fifo, os.O_WRONLY),
        header,
        start=0.0,
        max_buffer=64 * 1024,
        flush_interval=0.01,
        stall_timeout=0.3,
        on_failure=failures.append,
    )
    healthy_path = tmp_path / "healthy.cast"
    healthy = RecordingTap(
        os.open(healthy_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
        header,
        start=0.0,
        flush_interval=0.01,
        stall_timeout=0.3,
    )
    stuck.begin()
    healthy.begin()
    try:
        with pytest.raises(RecordingFailed):
            for i in range(10_000):  # far more than the pipe and the queue hold together
                await stuck.put(U2C, encode(Channel.STDOUT, b"z" * 4096), i / 1000)
        assert failures and isinstance(failures[0], WriterStalled)
        # The shared writer thread is still inside the hung write; the other recording goes on.
        await healthy.put(U2C, encode(Channel.STDOUT, b"still recorded\r\n"), 1.0)
        result = await asyncio.wait_for(healthy.close(), 10)
        assert healthy.failure is None and result.events >= 1
        assert b"still recorded" in healthy_path.read_bytes()
        await asyncio.wait_for(stuck.close(), 10)
    finally:
        os.close(reader)  # the hung write now fails (EPIPE) and the old thread ends


async def test_a_hurried_job_cuts_the_tick_short() -> None:
    writer = BatchWriter(tick=10.0)
    assert await asyncio.wait_for(writer.submit(lambda n: n, 0), 10) == 0
    # The result can reach the loop before the thread has looked at its queue once more: a job
    # submitted at that instant runs at once. A moment later the thread is in its tick (half a
    # second: a loaded machine may hold the thread that long; the tick is far longer).
    await asyncio.sleep(0.5)
    # The thread now sleeps out its tick: an ordinary job waits for the end of it...
    waiting = writer.submit(lambda n: n, 1)
    await asyncio.sleep(0.3)
    assert not waiting.done()
    # ...and a full batch does not (a burst of output is written as fast as it comes).
    both = asyncio.gather(waiting, writer.submit(lambda n: n, 2, hurry=True))
    assert await asyncio.wait_for(both, 1.0) == [1, 2]
