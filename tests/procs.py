"""Real processes for tests: start a recorder subcommand, wait for its "listening on" line, clean up.

Every process started here carries a unique ``RECORDER_TEST_TAG`` in its environment, which its
children (the runtime's shells, say) inherit; when the context ends, the command is stopped with
SIGTERM and any tagged process still alive fails the test (after being killed).

``LocalShellClient`` stands in for ``AgentCoreRuntimeClient`` so that the public SDK's
``ShellSession`` can be pointed at a local ws:// server unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

LISTENING_RE = re.compile(r"^listening on (ws://\S+)$")
TAG_VAR = "RECORDER_TEST_TAG"
#: Safety nets only (never asserted as durations).
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
STRAY_TIMEOUT = 10.0

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
TEST_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/test-runtime"


def recorder_command(*args: str) -> list[str]:
    """argv that runs ``recorder <args>`` with this interpreter's installation."""
    script = Path(sys.executable).with_name("recorder")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from recorder.cli.app import main; main()", *args]


@dataclass
class RunningProcess:
    """A started recorder command: its URL (from the listening line) and the process."""

    url: str
    proc: subprocess.Popen[bytes]
    tag: str
    output: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Everything the process printed so far (stdout and stderr, merged)."""
        return "\n".join(self.output)

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process."""
        self.proc.send_signal(sig)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the process to exit and return its exit code."""
        return self.proc.wait(timeout)


def tagged_processes(tag: str) -> list[int]:
    """Live processes whose environment carries ``RECORDER_TEST_TAG=tag``."""
    needle = f"{TAG_VAR}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def wait_until(predicate: object, timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate()`` until true; fail with ``what`` after ``timeout`` seconds (a safety net)."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


async def until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.01) -> None:
    """:func:`wait_until` for async tests: polls without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


def assert_no_strays(tag: str, timeout: float = STRAY_TIMEOUT) -> None:
    """Fail (after killing them) if processes tagged ``tag`` are still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:
        described = []
        for pid in left:
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                described.append(f"{pid}: {cmdline!r}")
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"processes outlived their test: {described}")


@contextlib.contextmanager
def start_recorder(
    *args: str,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = READY_TIMEOUT,
    check_strays: bool = True,
) -> Iterator[RunningProcess]:
    """Run ``recorder <args>`` until it prints "listening on ws://...", yield it, then stop it."""
    tag = uuid.uuid4().hex
    full_env = {**os.environ, **(env or {}), TAG_VAR: tag}
    proc = subprocess.Popen(
        recorder_command(*args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=full_env,
    )
    running = RunningProcess(url="", proc=proc, tag=tag)
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            running.output.append(line)
            match = LISTENING_RE.match(line)
            if match and not running.url:
                running.url = match.group(1)
                ready.set()
        ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not ready.wait(ready_timeout) or not running.url:
            raise AssertionError(f"recorder {' '.join(args)} did not start listening:\n{running.text}")
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(5)
        if check_strays:
            assert_no_strays(tag)


def start_runtime(
    *args: str, env: Mapping[str, str] | None = None
) -> contextlib.AbstractContextManager[RunningProcess]:
    """``recorder runtime --listen 127.0.0.1:0 <args>``, running until the context ends."""
    return start_recorder("runtime", "--listen", "127.0.0.1:0", *args, env=env)


def run_recorder(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``recorder <args>`` to completion and capture its output."""
    return subprocess.run(
        recorder_command(*args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


class LocalShellClient:
    """Stands in for AgentCoreRuntimeClient: the same ``connect_shell*`` contract, a local ws:// URL."""

    def __init__(
        self, base_url: str, region: str = "us-east-1", headers: Mapping[str, str] | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.region = region
        self.headers = dict(headers or {})

    def shell_url(
        self, runtime_arn: str, endpoint_name: str | None = None, shell_id: str | None = None
    ) -> str:
        """The URL the SDK would build, on the local server (the path and query as the SDK makes them)."""
        params = {}
        if endpoint_name:
            params["qualifier"] = endpoint_name
        if shell_id:
            params["shellId"] = shell_id
        url = f"{self.base_url}/runtimes/{quote(runtime_arn, safe='')}/ws/shells"
        return f"{url}?{urlencode(params)}" if params else url

    def connect_shell(
        self,
        runtime_arn: str,
        session_id: str | None = None,
        endpoint_name: str | None = None,
        shell_id: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """(url, headers) with the session id in its header, as the SigV4 path sends it."""
        session_id = session_id or str(uuid.uuid4())
        shell_id = shell_id or str(uuid.uuid4())
        headers = {**self.headers, SESSION_HEADER: session_id}
        return self.shell_url(runtime_arn, endpoint_name, shell_id), headers

    def connect_shell_oauth(
        self,
        runtime_arn: str,
        bearer_token: str,
        session_id: str | None = None,
        endpoint_name: str | None = None,
        shell_id: str | None = None,
    ) -> tuple[str, list[str]]:
        """(url, subprotocols): the session id in the query, the token in Sec-WebSocket-Protocol."""
        session_id = session_id or str(uuid.uuid4())
        shell_id = shell_id or str(uuid.uuid4())
        url = self.shell_url(runtime_arn, endpoint_name, shell_id)
        url += ("&" if "?" in url else "?") + urlencode({SESSION_HEADER: session_id})
        encoded = base64.urlsafe_b64encode(bearer_token.encode()).decode().rstrip("=")
        return url, [f"base64UrlBearerAuthorization.{encoded}", "base64UrlBearerAuthorization"]
