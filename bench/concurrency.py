"""Many sessions at once: keystroke echo under load, and idle connections held per proxy process.

- echo: N sessions (a `cat` shell each) type concurrently, a key every ~50 ms per session, each
  starting at its own moment; the round trip of every key is measured, direct from the runtime
  and through the proxy, in one run, in turns (direct, proxied, direct, proxied), each turn once
  the last one's recordings are sealed and indexed.
- idle: C attached idle shells through one proxy (pings on); the proxy's resident memory before and
  after gives its memory per connection, and one more connection must still open and echo.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.procs import proxy_args, recorder_started
from bench.relay import cpu_seconds, settle
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

#: Seconds between one session's keys (uniform): about 20 keys a second in every session at once.
TYPING_GAP = (0.03, 0.07)
#: Keys each side of a level types at least: a p99 of 120 keys (one typist for 6 s) is their
#: second slowest, and moved from 0.5 to 4.5 ms between runs of the same code.
MIN_ECHO_SAMPLES = 600
#: Turns each side of a level types in, alternating direct and proxied.
ECHO_TURNS = 2
#: Attached shells per runtime session is limited (10), so sessions are spread over session ids.
PER_SESSION = 10


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def _open(base: str, session_id: str) -> ClientConnection:
    req = ShellRequest(RuntimeArn.parse(LOCAL_RUNTIME_ARN), None, uuid.uuid4().hex, session_id)
    ws = await connect(
        base + req.target(),
        additional_headers={SESSION_HEADER: session_id},
        max_size=2**16,
        open_timeout=60,
        ping_interval=20,
    )
    await asyncio.wait_for(ws.recv(), 30)  # the confirmation
    return ws


async def _open_many(base: str, count: int) -> list[ClientConnection]:
    sessions = [str(uuid.uuid4()) for _ in range((count + PER_SESSION - 1) // PER_SESSION)]
    opened: list[ClientConnection] = []
    for start in range(0, count, 50):  # in waves, so the handshake backlog stays small
        batch = [_open(base, sessions[i // PER_SESSION]) for i in range(start, min(count, start + 50))]
        opened += await asyncio.gather(*batch)
    return opened


async def _typist(ws: ClientConnection, until: float, times: list[float]) -> None:
    rng = random.Random(id(ws))
    n = 0
    # Sessions do not all press their first key at the same instant: 200 keys at once would
    # measure that one burst's queue (about 2% of the samples, so it set the p99), not typing.
    await asyncio.sleep(rng.uniform(0, TYPING_GAP[1]))
    while time.perf_counter() < until:
        key = bytes([97 + n % 26])
        n += 1
        start = time.perf_counter()
        await ws.send(encode(Channel.STDIN, key))
        while True:
            frame = decode(await ws.recv())  # type: ignore[arg-type]
            if frame.channel == Channel.STDOUT and key in frame.payload:
                break
        times.append((time.perf_counter() - start) * 1000)
        if n % 60 == 0:
            await ws.send(encode(Channel.STDIN, b"\r"))
            await asyncio.sleep(0.01)
            while True:  # drop the echoed line
                try:
                    await asyncio.wait_for(ws.recv(), 0.02)
                except TimeoutError:
                    break
        await asyncio.sleep(rng.uniform(*TYPING_GAP))


@dataclass
class _Turn:
    """One turn of typing: each key's round trip (ms), and the CPU the processes used meanwhile."""

    times: list[float]
    #: CPU seconds during the typing (connecting and closing not counted), by process: the
    #: watched ones (``proxy``, ``runtime``) and ``clients`` (this process, every typist).
    cpu: dict[str, float]
    seconds: float


async def _echo_under_load(base: str, sessions: int, seconds: float, watched: dict[str, int]) -> _Turn:
    conns = await _open_many(base, sessions)
    times: list[float] = []
    before = {name: cpu_seconds(pid) for name, pid in watched.items()}
    clients, began = time.process_time(), time.perf_counter()
    until = began + seconds
    await asyncio.gather(*(_typist(ws, until, times) for ws in conns))
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in watched.items()}
    cpu["clients"] = time.process_time() - clients
    turn = _Turn(times, cpu, time.perf_counter() - began)
    await asyncio.gather(*(ws.close() for ws in conns))
    return turn


def _cpu_figures(level: int, side: str, turns: list[_Turn]) -> dict[str, float]:
    """CPU per key of each process, and how many of the machine's cores they kept busy."""
    keys = sum(len(t.times) for t in turns)
    seconds = sum(t.seconds for t in turns)
    names = turns[0].cpu.keys()
    used = {name: sum(t.cpu[name] for t in turns) for name in names}
    figures = {f"echo{level}_{side}_{name}_cpu_us_per_key": used[name] * 1e6 / keys for name in names}
    figures[f"echo{level}_{side}_busy_cores"] = sum(used.values()) / seconds
    return figures


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def typing_seconds(level: int, seconds: float, min_samples: int = MIN_ECHO_SAMPLES) -> float:
    """How long ``level`` sessions type: ``seconds``, or long enough for ``min_samples`` keys."""
    per_second = level / (sum(TYPING_GAP) / 2)
    return max(seconds, min_samples / per_second)


def echo(
    levels: tuple[int, ...] = (1, 50, 200), seconds: float = 6.0, min_samples: int = MIN_ECHO_SAMPLES
) -> dict[str, Any]:
    """Echo round trips at each level of concurrently typing sessions, direct and proxied."""
    results: dict[str, Any] = {}
    # A closed client leaves its shell alive and detached (as AgentCore does), so every shell
    # opened at every level, direct and proxied, counts against the runtime's limit.
    live = str(2 * ECHO_TURNS * sum(levels) + 10)
    with tempfile.TemporaryDirectory() as tmp:
        with recorder_started(
            "runtime", "--listen", "127.0.0.1:0", "--shell", "cat", "--max-live-shells", live
        ) as rt:
            with recorder_started(*proxy_args(Path(tmp), rt.url)) as proxy:
                pids = (rt.pid, proxy.pid)
                for level in levels:
                    typing = typing_seconds(level, seconds, min_samples) / ECHO_TURNS
                    direct_turns: list[_Turn] = []
                    proxied_turns: list[_Turn] = []
                    # Direct and proxied in turns, so that the machine's drift (it is shared)
                    # falls on both sides alike. Each turn starts once the last one's recordings
                    # are sealed and indexed (as the relay bench's bursts do): 200 sessions ending
                    # at once keep the proxy and its indexer busy for seconds, and the next turn
                    # measured that work, not the relay (p99 22 ms against 10 without turns).
                    for _ in range(ECHO_TURNS):
                        eventloop.run(settle(pids))
                        direct_turns.append(
                            eventloop.run(_echo_under_load(rt.url, level, typing, {"runtime": rt.pid}))
                        )
                        eventloop.run(settle(pids))
                        both = {"proxy": proxy.pid, "runtime": rt.pid}
                        proxied_turns.append(eventloop.run(_echo_under_load(proxy.url, level, typing, both)))
                    direct = [ms for t in direct_turns for ms in t.times]
                    through = [ms for t in proxied_turns for ms in t.times]
                    results[f"echo{level}_direct_median_ms"] = statistics.median(direct)
                    results[f"echo{level}_proxy_median_ms"] = statistics.median(through)
                    results[f"echo{level}_direct_p99_ms"] = _p99(direct)
                    results[f"echo{level}_proxy_p99_ms"] = _p99(through)
                    results[f"echo{level}_added_p99_ms"] = _p99(through) - _p99(direct)
                    results[f"echo{level}_keys"] = len(through)
                    # Whether the two cores were the limit: CPU per key of each process, and the
                    # cores kept busy (a p99 grows as this nears 2 on this machine).
                    results.update(_cpu_figures(level, "direct", direct_turns))
                    results.update(_cpu_figures(level, "proxied", proxied_turns))
    return results


async def _hold(base: str, proxy_pid: int, count: int) -> dict[str, Any]:
    await asyncio.sleep(1.0)
    before = _rss_kib(proxy_pid)
    conns = await _open_many(base, count)
    await asyncio.sleep(2.0)  # let buffers and tasks settle
    after = _rss_kib(proxy_pid)
    # The proxy must still answer: one more connection opens and echoes.
    start = time.perf_counter()
    extra = await _open(base, str(uuid.uuid4()))
    await extra.send(encode(Channel.STDIN, b"z"))
    while True:
        frame = decode(await asyncio.wait_for(extra.recv(), 30))  # type: ignore[arg-type]
        if frame.channel == Channel.STDOUT and b"z" in frame.payload:
            break
    answer_ms = (time.perf_counter() - start) * 1000
    await extra.close()
    await asyncio.gather(*(ws.close() for ws in conns))
    return {
        "idle_connections": len(conns),
        "idle_proxy_rss_mib": after / 1024,
        "idle_kib_per_connection": (after - before) / len(conns),
        "idle_new_connection_ms": answer_ms,
    }


def idle(count: int = 1000) -> dict[str, Any]:
    """Hold ``count`` idle attached shells through one proxy; memory per connection."""
    with tempfile.TemporaryDirectory() as tmp:
        live = str(count + 20)
        with recorder_started(
            "runtime", "--listen", "127.0.0.1:0", "--shell", "cat", "--max-live-shells", live
        ) as rt:
            with recorder_started(*proxy_args(Path(tmp), rt.url)) as proxy:
                return eventloop.run(_hold(proxy.url, proxy.pid, count))


if __name__ == "__main__":
    print(echo(levels=(1, 50), seconds=3.0))
    print(idle(int(os.environ.get("BENCH_IDLE", "200"))))
