"""Upstream connectors: where the proxy opens the real shell.

Each connector turns a validated ShellRequest into an open WebSocket to a server that speaks the
shell protocol, with the upstream's 101 ids. The embedded runtime and any ws(s):// server use
:class:`WebSocketUpstream`; the AWS service gets its own connector (SigV4) behind the same seam.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
import subprocess
import sys
from dataclasses import dataclass
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from recorder.errors import UpstreamError
from recorder.logfmt import get_logger
from recorder.protocol import MAX_MESSAGE_SIZE, SESSION_HEADER, SHELL_ID_HEADER, ShellRequest
from recorder.proxy.hop import HopClientConnection

log = get_logger(__name__)

#: How long opening an upstream connection may take before the client gets 502.
DEFAULT_OPEN_TIMEOUT = 10.0
#: RFC 6455 pings toward the upstream keep idle shells alive past intermediaries' idle timeouts.
DEFAULT_PING_INTERVAL = 30.0
#: How long to wait for the embedded runtime to say where it listens.
RUNTIME_START_TIMEOUT = 20.0
_LISTENING_RE = re.compile(r"listening on (ws://\S+)")


class UpstreamRefused(UpstreamError):
    """The upstream answered the upgrade with an HTTP error; the client gets the same status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"upstream refused the shell: HTTP {status} {body.strip()[:200]}")
        self.status = status
        self.body = body


class UpstreamUnavailable(UpstreamError):
    """The upstream could not be reached (DNS, TLS, refused, timeout); the client gets 502."""


@dataclass(slots=True)
class OpenUpstream:
    """An upstream connection after its 101, with the ids the upstream assigned."""

    ws: ClientConnection
    shell_id: str | None
    session_id: str | None


class Upstream(Protocol):
    """What the proxy needs from an upstream."""

    #: How the index names this upstream ("local", a URL, "agentcore").
    name: str

    async def start(self) -> None:
        """Prepare (start a child process, load credentials)."""

    async def open(self, request: ShellRequest) -> OpenUpstream:
        """Open a shell connection for ``request``."""

    async def stop(self) -> None:
        """Release what start() took."""


class WebSocketUpstream:
    """Any ws:// or wss:// server that speaks the shell protocol."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        bearer_token: str | None = None,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ) -> None:
        if not base_url.startswith(("ws://", "wss://")):
            raise UpstreamError(f"upstream URL must start with ws:// or wss://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.name = name or self.base_url
        self._ssl = ssl_context
        self._token = bearer_token
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval

    async def start(self) -> None:
        """Nothing to prepare."""

    async def stop(self) -> None:
        """Nothing to release."""

    async def open(self, request: ShellRequest) -> OpenUpstream:
        """Open the shell; the session id rides in its header, the client's credentials never go upstream."""
        headers: dict[str, str] = {}
        if request.session_id:
            headers[SESSION_HEADER] = request.session_id
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        uri = self.base_url + request.target()
        try:
            ws = await connect(
                uri,
                additional_headers=headers,
                max_size=MAX_MESSAGE_SIZE,
                create_connection=HopClientConnection,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                compression=None,
                ssl=self._ssl if uri.startswith("wss://") else None,
            )
        except InvalidStatus as exc:
            body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
            raise UpstreamRefused(exc.response.status_code, body) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ssl.SSLError) as exc:
            why = str(exc) or type(exc).__name__
            raise UpstreamUnavailable(f"cannot reach upstream {self.name}: {why}") from None
        response = ws.response
        assert response is not None
        return OpenUpstream(
            ws=ws,
            shell_id=response.headers.get(SHELL_ID_HEADER),
            session_id=response.headers.get(SESSION_HEADER),
        )


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the proxy dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class LocalRuntimeUpstream:
    """The embedded runtime, started as a child process on a free loopback port."""

    name = "local"

    def __init__(self, *, shell: str | None = None, idle_timeout: float | None = None) -> None:
        self._shell = shell
        self._idle_timeout = idle_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._inner: WebSocketUpstream | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def url(self) -> str | None:
        """The runtime's ws:// URL once started."""
        return self._inner.base_url if self._inner else None

    async def start(self) -> None:
        """Start ``recorder runtime --listen 127.0.0.1:0`` and wait for its listening line."""
        args = [sys.executable, "-m", "recorder", "runtime", "--listen", "127.0.0.1:0"]
        if self._shell:
            args += ["--shell", self._shell]
        if self._idle_timeout is not None:
            args += ["--idle-timeout", str(self._idle_timeout)]
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - needed for PR_SET_PDEATHSIG
        )
        stderr = self._proc.stderr
        assert stderr is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RUNTIME_START_TIMEOUT
        lines: list[str] = []
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                raw = await asyncio.wait_for(loop.run_in_executor(None, stderr.readline), remaining)
            except TimeoutError:
                break
            if not raw:
                break
            line = raw.decode("utf-8", "replace").rstrip()
            lines.append(line)
            match = _LISTENING_RE.search(line)
            if match:
                self._inner = WebSocketUpstream(match.group(1), name="local", ping_interval=None)
                self._drain = loop.create_task(self._drain_logs(stderr))
                log.info("upstream.local.started", url=match.group(1), pid=self._proc.pid)
                return
        await self.stop()
        tail = "; ".join(lines[-3:]) or "no output"
        raise UpstreamError(f"the embedded runtime did not start: {tail}")

    async def _drain_logs(self, stream: object) -> None:
        loop = asyncio.get_running_loop()
        readline = stream.readline  # type: ignore[attr-defined]
        while True:
            raw = await loop.run_in_executor(None, readline)
            if not raw:
                return
            # The runtime's own structured lines, passed on to our log.
            log.debug("upstream.local.log", line=raw.decode("utf-8", "replace").rstrip())

    async def open(self, request: ShellRequest) -> OpenUpstream:
        """Open a shell on the embedded runtime."""
        if self._inner is None or self._proc is None or self._proc.poll() is not None:
            raise UpstreamUnavailable("the embedded runtime is not running")
        return await self._inner.open(request)

    async def stop(self) -> None:
        """SIGTERM the runtime (its shells end) and wait for it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), 10)
            except TimeoutError:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if self._drain is not None:
            self._drain.cancel()
        if proc.stderr is not None:
            proc.stderr.close()
        self._proc = None
        log.info("upstream.local.stopped", returncode=proc.returncode, pid=os.getpid())
