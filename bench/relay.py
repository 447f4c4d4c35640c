"""Relay cost: bulk output and keystroke echo, direct from the runtime and through the recording proxy.

Bursts also go through a bare TCP forwarder (``bench/forwarder.py``), in the same turns: the
throughput of one more hop that does nothing else, beside the proxy's.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.procs import Started, forwarder_started, proxy_args, recorder_process, recorder_started
from recorder.cli import eventloop
from recorder.protocol import (
    LOCAL_RUNTIME_ARN,
    SESSION_HEADER,
    Channel,
    RuntimeArn,
    ShellRequest,
    decode,
    encode,
)


async def _open(base: str) -> ClientConnection:
    req = ShellRequest(RuntimeArn.parse(LOCAL_RUNTIME_ARN), None, uuid.uuid4().hex, str(uuid.uuid4()))
    return await connect(
        base + req.target(), additional_headers={SESSION_HEADER: req.session_id or ""}, max_size=2**16
    )


async def burst(base: str, megabytes: int) -> float:
    """Seconds to receive ``megabytes`` MB of output and the shell's exit."""
    ws = await _open(base)
    command = f"stty -echo -onlcr; head -c {megabytes * 1_000_000} /dev/zero | tr '\\0' x; exit 0\r"
    await ws.send(encode(Channel.STDIN, command.encode()))
    received = 0
    start = time.perf_counter()
    async for message in ws:
        frame = decode(message)  # type: ignore[arg-type]
        if frame.channel == Channel.STDOUT:
            received += len(frame.payload)
        elif frame.channel == Channel.STATUS and b'"shellId"' not in frame.payload:
            break
    elapsed = time.perf_counter() - start
    await ws.close()
    if received < megabytes * 1_000_000:
        raise RuntimeError(f"short burst: {received} bytes")
    return elapsed


async def echo_round_trips(base: str, samples: int) -> list[float]:
    """Round trip of single keystrokes to a `cat` shell (the PTY echoes them), in milliseconds."""
    ws = await _open(base)
    await asyncio.wait_for(ws.recv(), 10)  # the confirmation
    times: list[float] = []
    for i in range(samples):
        key = bytes([97 + i % 26])
        start = time.perf_counter()
        await ws.send(encode(Channel.STDIN, key))
        while True:
            frame = decode(await ws.recv())  # type: ignore[arg-type]
            if frame.channel == Channel.STDOUT and key in frame.payload:
                break
        times.append((time.perf_counter() - start) * 1000)
        if i % 64 == 63:
            await ws.send(encode(Channel.STDIN, b"\r"))  # keep the line short
            await asyncio.sleep(0.001)
            while True:
                try:
                    await asyncio.wait_for(ws.recv(), 0.02)
                except TimeoutError:
                    break
    await ws.close()
    return times


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _family(pid: int) -> list[int]:
    """``pid`` and its descendants (the proxy's indexer child, the runtime's shells)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                continue  # the task ended meanwhile
    return found


def _family_cpu(pids: tuple[int, ...]) -> float:
    total = 0.0
    for pid in pids:
        for member in _family(pid):
            try:
                total += cpu_seconds(member)
            except OSError:
                continue  # ended meanwhile
    return total


async def settle(pids: tuple[int, ...], quiet: float = 0.5, limit: float = 90.0) -> None:
    """Wait until ``pids`` and their children have used no CPU for ``quiet`` seconds: the last
    burst's recording is closed, sealed and indexed for search (the proxy's niced indexer child)
    before the next burst starts, so that no burst runs beside another one's deferred work."""
    deadline = time.monotonic() + limit
    last = _family_cpu(pids)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        now = _family_cpu(pids)
        if now - last < 0.01:
            return
        last = now


async def _run(
    runtime: Started, proxy: Started, forwarder: Started, megabytes: int, rounds: int
) -> dict[str, Any]:
    direct_t: list[float] = []
    forward_t: list[float] = []
    proxy_t: list[float] = []
    proxy_cpu: list[float] = []
    runtime_cpu: list[float] = []
    index_cpu: list[float] = []
    pids = (runtime.pid, proxy.pid, forwarder.pid)
    for _ in range(rounds):  # in turns, so drift on a shared machine hits every side alike
        await settle(pids)
        direct_t.append(await burst(runtime.url, megabytes))
        await settle(pids)
        forward_t.append(await burst(forwarder.url, megabytes))
        await settle(pids)
        before = (cpu_seconds(proxy.pid), cpu_seconds(runtime.pid), _family_cpu((proxy.pid,)))
        proxy_t.append(await burst(proxy.url, megabytes))
        await settle(pids)  # the proxy's CPU includes closing and sealing the recording
        proxy_cpu.append(cpu_seconds(proxy.pid) - before[0])
        runtime_cpu.append(cpu_seconds(runtime.pid) - before[1])
        index_cpu.append(_family_cpu((proxy.pid,)) - before[2] - proxy_cpu[-1])
    ratios = [d / p for d, p in zip(direct_t, proxy_t, strict=True)]
    forwarded = [d / f for d, f in zip(direct_t, forward_t, strict=True)]
    return {
        "burst_mb": megabytes,
        "direct_mb_s": megabytes / statistics.median(direct_t),
        "proxy_mb_s": megabytes / statistics.median(proxy_t),
        "throughput_ratio": statistics.median(ratios),
        "throughput_ratios": [round(r, 3) for r in ratios],
        # The same bursts through a bare TCP forwarder (bench/forwarder.py): one more hop and
        # nothing else, so the gap between it and the proxy is the proxy's own work.
        "forwarder_mb_s": megabytes / statistics.median(forward_t),
        "forwarder_throughput_ratio": statistics.median(forwarded),
        "forwarder_throughput_ratios": [round(r, 3) for r in forwarded],
        "proxy_over_forwarder_ratio": statistics.median(
            f / p for f, p in zip(forward_t, proxy_t, strict=True)
        ),
        # CPU is steadier than wall time on a shared machine: what relaying and recording cost.
        "proxy_cpu_s_per_100mb": statistics.median(proxy_cpu) * 100 / megabytes,
        "runtime_cpu_s_per_100mb": statistics.median(runtime_cpu) * 100 / megabytes,
        # After the connection, off the relay path: the proxy's indexer child makes it searchable.
        "proxy_index_cpu_s_per_100mb": statistics.median(index_cpu) * 100 / megabytes,
    }


async def _echo(runtime: str, proxy: str, samples: int) -> dict[str, Any]:
    direct: list[float] = []
    through: list[float] = []
    for _ in range(2):
        direct += await echo_round_trips(runtime, samples // 2)
        through += await echo_round_trips(proxy, samples // 2)
    return {
        "echo_direct_median_ms": statistics.median(direct),
        "echo_direct_p99_ms": _pct(direct, 0.99),
        "echo_proxy_median_ms": statistics.median(through),
        "echo_proxy_p99_ms": _pct(through, 0.99),
        "echo_added_p99_ms": _pct(through, 0.99) - _pct(direct, 0.99),
    }


def run(megabytes: int = 200, rounds: int = 7, samples: int = 1000) -> dict[str, Any]:
    """Throughput ratios (proxied and bare-forwarded, each over direct) and keystroke echo, in one run."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with (
            recorder_started("runtime", "--listen", "127.0.0.1:0") as runtime,
            recorder_started(*proxy_args(Path(tmp) / "a", runtime.url)) as proxy,
            forwarder_started(runtime.url) as forwarder,
        ):
            results.update(eventloop.run(_run(runtime, proxy, forwarder, megabytes, rounds)))
        with recorder_process("runtime", "--listen", "127.0.0.1:0", "--shell", "cat") as cat_runtime:
            with recorder_process(*proxy_args(Path(tmp) / "b", cat_runtime)) as cat_proxy:
                results.update(eventloop.run(_echo(cat_runtime, cat_proxy, samples)))
    return results
