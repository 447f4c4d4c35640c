"""Start recorder processes for a benchmark and find their URLs."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_LISTENING = re.compile(r"^listening on (ws://\S+)$")


@dataclass(frozen=True)
class Started:
    """A running recorder process: where it listens and its pid."""

    url: str
    pid: int


@contextlib.contextmanager
def recorder_process(*args: str, timeout: float = 30.0) -> Iterator[str]:
    """Run ``recorder <args>`` until it prints its listening line; yield the URL; SIGTERM it after."""
    with recorder_started(*args, timeout=timeout) as started:
        yield started.url


@contextlib.contextmanager
def recorder_started(*args: str, timeout: float = 30.0) -> Iterator[Started]:
    """Run ``recorder <args>`` until it prints its listening line; yield it; SIGTERM it after."""
    with module_started("recorder", *args, timeout=timeout) as started:
        yield started


@contextlib.contextmanager
def forwarder_started(upstream: str, timeout: float = 30.0) -> Iterator[Started]:
    """Run the bare TCP forwarder (``bench.forwarder``) in front of ``upstream``; yield it."""
    with module_started("bench.forwarder", upstream, timeout=timeout) as started:
        yield started


@contextlib.contextmanager
def module_started(module: str, *args: str, timeout: float = 30.0) -> Iterator[Started]:
    """Run ``python -m <module> <args>`` until it prints its listening line; yield it; SIGTERM it after."""
    env = {**os.environ, "RECORDER_RUNTIME_NO_USER_RC": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    found: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            match = _LISTENING.match(raw.decode(errors="replace").strip())
            if match and not found:
                found.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(timeout) or not found:
            raise RuntimeError(f"{module} {' '.join(args)} did not start")
        yield Started(found[0], proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proxy_args(data_dir: Path, upstream: str) -> list[str]:
    """Arguments for a proxy with its own data directory in front of ``upstream``."""
    return [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        str(data_dir),
        "--db",
        f"sqlite:///{data_dir / 'index.sqlite3'}",
        "--upstream",
        upstream,
        "--log-level",
        "WARNING",
        # Loopback benchmark clients carry no token; authentication is not what is measured.
        "--auth",
        "none",
    ]
