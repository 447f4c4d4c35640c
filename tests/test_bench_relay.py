"""The relay benchmark's bare forwarder carries the protocol through unchanged, and the relay's
turns time a real burst direct, through the forwarder and through the proxy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import relay
from bench.procs import forwarder_started, proxy_args, recorder_started
from recorder.cli import eventloop

REPO = Path(__file__).resolve().parent.parent


def test_a_burst_through_the_forwarder_arrives_whole() -> None:
    with (
        recorder_started("runtime", "--listen", "127.0.0.1:0") as runtime,
        forwarder_started(runtime.url) as forwarder,
    ):
        assert forwarder.url != runtime.url
        # burst() raises unless every byte and the shell's exit status came back.
        assert eventloop.run(relay.burst(forwarder.url, 2)) > 0
        # Keystrokes go the other way through it too.
        times = eventloop.run(relay.echo_round_trips(forwarder.url, 5))
        assert len(times) == 5


def test_the_relay_turns_measure_direct_forwarder_and_proxy(tmp_path: Path) -> None:
    with (
        recorder_started("runtime", "--listen", "127.0.0.1:0") as runtime,
        recorder_started(*proxy_args(tmp_path, runtime.url)) as proxy,
        forwarder_started(runtime.url) as forwarder,
    ):
        results = eventloop.run(relay._run(runtime, proxy, forwarder, 1, 2))
    assert len(results["throughput_ratios"]) == 2
    assert len(results["forwarder_throughput_ratios"]) == 2
    for name in ("direct_mb_s", "proxy_mb_s", "forwarder_mb_s", "proxy_over_forwarder_ratio"):
        assert results[name] > 0
    # The proxy recorded what it relayed: its recording is on disk.
    assert list(tmp_path.rglob("*.cast"))


def test_the_forwarder_refuses_an_upstream_it_cannot_use() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.forwarder", "http://127.0.0.1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "upstream must be ws://host:port" in done.stderr
    assert "Traceback" not in done.stderr
