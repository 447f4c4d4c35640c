"""The embedded runtime: a WebSocket server speaking InvokeAgentRuntimeCommandShell over local PTYs."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import http
import ipaddress
import os
import signal
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from recorder.errors import (
    ConfigError,
    EmptyFrame,
    InvalidPath,
    InvalidResize,
    ProtocolError,
    ShellSpawnError,
    TooManyShells,
)
from recorder.logfmt import get_logger
from recorder.protocol import (
    BEARER_SUBPROTOCOL,
    MAX_MESSAGE_SIZE,
    SESSION_HEADER,
    SHELL_ID_HEADER,
    Channel,
    CloseCode,
    Resize,
    decode,
    encode,
    new_session_id,
    new_shell_id,
    parse_target,
    token_from_authorization,
    token_from_subprotocols,
)
from recorder.protocol import status as status_payload
from recorder.runtime.ring import RING_BUFFER_SIZE
from recorder.runtime.shell import IDLE_TIMEOUT, TERMINATE_GRACE, Attachment, Shell

log = get_logger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8766
#: Attached shells per runtime session, as the service allows; detached shells do not count.
MAX_ATTACHED_SHELLS = 10
#: Live shells (attached or detached, every session) one runtime runs at most; each is a process tree.
MAX_SHELLS = 256
#: Seconds a closing handshake may take before the connection is dropped.
CLOSE_TIMEOUT = 5.0
#: TERM the shells see.
TERM = "xterm-256color"


def bashrc_path() -> Path:
    """The startup file that adds OSC 133 prompt marks to the embedded bash."""
    return Path(str(resources.files("recorder.runtime").joinpath("bashrc.sh")))


def default_shell() -> list[str]:
    """The default shell command: an interactive bash reading only our startup file."""
    return ["bash", "--noprofile", "--rcfile", str(bashrc_path()), "-i"]


def is_loopback(host: str) -> bool:
    """True when ``host`` names only loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


@dataclass(frozen=True)
class RuntimeConfig:
    """Settings of one embedded runtime."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: Program each shell runs; None means the embedded bash with OSC 133 marks.
    shell: Sequence[str] | None = None
    idle_timeout: float = IDLE_TIMEOUT
    #: Accepted bearer tokens; empty means no authentication (loopback only).
    tokens: frozenset[str] = frozenset()
    buffer_size: int = RING_BUFFER_SIZE
    max_attached_shells: int = MAX_ATTACHED_SHELLS
    max_shells: int = MAX_SHELLS
    terminate_grace: float = TERMINATE_GRACE
    #: Environment of the shells; None means this process's environment.
    env: Mapping[str, str] | None = None
    cwd: str | None = None

    def check(self) -> None:
        """Raise ConfigError for settings that cannot work or are unsafe."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is outside 0-65535")
        if self.idle_timeout <= 0:
            raise ConfigError(f"idle timeout must be positive, got {self.idle_timeout}")
        if self.buffer_size < 1:
            raise ConfigError(f"ring buffer size must be positive, got {self.buffer_size}")
        if self.max_attached_shells < 1:
            raise ConfigError(f"max attached shells must be positive, got {self.max_attached_shells}")
        if self.max_shells < 1:
            raise ConfigError(f"max shells must be positive, got {self.max_shells}")
        if self.shell is not None and not self.shell:
            raise ConfigError("shell command is empty")
        if any(not t for t in self.tokens):
            raise ConfigError("bearer tokens must not be empty")
        if not self.tokens and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to listen on {self.host} without authentication: "
                "use a loopback address or pass --token-file"
            )

    def argv(self) -> list[str]:
        """The command each shell runs."""
        return list(self.shell) if self.shell is not None else default_shell()

    def shell_env(self) -> dict[str, str]:
        """The environment each shell starts with."""
        env = dict(os.environ if self.env is None else self.env)
        env["TERM"] = TERM
        return env


@dataclass(frozen=True, slots=True)
class _Plan:
    """What process_request decided for a connection, for the handler to carry out."""

    session_id: str
    shell_id: str


class _Session:
    """A runtime session: the shells one session id names."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.shells: dict[str, Shell] = {}
        # Connections past process_request, by the shell they want; a shell counts as attached from the
        # moment its connection is accepted, so concurrent handshakes cannot exceed the limit.
        self.claims: dict[ServerConnection, str] = {}

    def attached(self) -> set[str]:
        """Shell ids with a connection (or an accepted handshake) right now."""
        return set(self.claims.values())

    @property
    def empty(self) -> bool:
        return not self.shells and not self.claims


def _offered_subprotocols(headers: Headers) -> list[str]:
    return [p.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",")]


def _refuse(conn: ServerConnection, status: http.HTTPStatus, message: str) -> Response:
    response = conn.respond(status, message + "\n")
    if status == http.HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = "Bearer"
    log.info("request.refused", status=int(status), reason=message, remote=_remote(conn))
    return response


def _remote(conn: ServerConnection) -> str:
    addr = conn.remote_address
    return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) and len(addr) >= 2 else str(addr)


class Runtime:
    """An AgentCore-compatible shell runtime on local PTYs; start(), then close()."""

    def __init__(self, config: RuntimeConfig | None = None) -> None:
        self.config = config or RuntimeConfig()
        self.config.check()
        self._tokens = [t.encode() for t in self.config.tokens]
        self._argv = self.config.argv()
        self._env = self.config.shell_env()
        self._server: Server | None = None
        self._sessions: dict[str, _Session] = {}
        self._plans: dict[ServerConnection, _Plan] = {}
        self._shells: set[Shell] = set()
        self._watchers: set[asyncio.Task[None]] = set()
        self._closing = False
        self._stopping = asyncio.Event()

    # ---- lifecycle

    async def start(self) -> None:
        """Start listening."""
        if self._server is not None:
            return
        try:
            self._server = await serve(
                self._handle,
                self.config.host,
                self.config.port,
                process_request=self._process_request,
                process_response=self._process_response,
                select_subprotocol=self._select_subprotocol,
                max_size=MAX_MESSAGE_SIZE,
                # PTY output is small and latency-bound; compression would also hide backpressure.
                compression=None,
                close_timeout=CLOSE_TIMEOUT,
            )
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ConfigError(f"cannot listen on {self.config.host}:{self.config.port}: {reason}") from None
        log.info("runtime.listening", url=self.url, auth="token" if self._tokens else "none")

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound."""
        if self._server is None:
            raise RuntimeError("runtime is not started")
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    @property
    def url(self) -> str:
        """ws://host:port of the listening socket."""
        host, port = self.address
        return f"ws://[{host}]:{port}" if ":" in host else f"ws://{host}:{port}"

    @property
    def shells(self) -> list[Shell]:
        """Every live shell (attached or detached)."""
        return list(self._shells)

    def find_shell(self, session_id: str, shell_id: str) -> Shell | None:
        """The shell ``shell_id`` of runtime session ``session_id``, if it exists."""
        session = self._sessions.get(session_id)
        return session.shells.get(shell_id) if session else None

    async def close(self) -> None:
        """Close every client with 1001, end every shell, stop listening."""
        if self._closing:
            return
        self._closing = True
        self._stopping.set()
        log.info("runtime.closing", shells=len(self._shells))
        if self._server is not None:
            self._server.close(close_connections=True, code=CloseCode.GOING_AWAY)
            await self._server.wait_closed()
        shells = list(self._shells)
        if shells:
            await asyncio.gather(*(s.end() for s in shells), return_exceptions=True)
            await asyncio.gather(*(s.lifecycle for s in shells), return_exceptions=True)
        for task in list(self._watchers):
            task.cancel()
        self._sessions.clear()
        log.info("runtime.closed")

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- handshake

    def _authorized(self, request: Request) -> bool:
        if not self._tokens:
            return True
        token = token_from_authorization(request.headers.get("Authorization"))
        if token is None:
            token = token_from_subprotocols(_offered_subprotocols(request.headers))
        if token is None:
            return False
        given = token.encode()
        match = False
        for accepted in self._tokens:
            # Check every token so the time taken does not say which one came close.
            match |= hmac.compare_digest(given, accepted)
        return match

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if self._closing:
            return _refuse(conn, http.HTTPStatus.SERVICE_UNAVAILABLE, "runtime is shutting down")
        if not self._authorized(request):
            return _refuse(conn, http.HTTPStatus.UNAUTHORIZED, "missing or invalid bearer token")
        try:
            target = parse_target(request.path, request.headers)
        except InvalidPath as exc:
            return _refuse(conn, http.HTTPStatus.NOT_FOUND, str(exc))
        except ProtocolError as exc:
            return _refuse(conn, http.HTTPStatus.BAD_REQUEST, str(exc))
        plan = _Plan(target.session_id or new_session_id(), target.shell_id or new_shell_id())
        session = self._sessions.get(plan.session_id)
        if session is None:
            session = self._sessions[plan.session_id] = _Session(plan.session_id)
        claimed = session.attached()
        if plan.shell_id not in claimed and len(claimed) >= self.config.max_attached_shells:
            error = TooManyShells(f"runtime session {plan.session_id}", self.config.max_attached_shells)
            self._drop_if_empty(session)
            return _refuse(conn, http.HTTPStatus.TOO_MANY_REQUESTS, str(error))
        # Handshakes under way count too, so a burst of new shells cannot overshoot.
        busy = len(self._shells) + len(self._plans)
        if plan.shell_id not in session.shells and busy >= self.config.max_shells:
            error = TooManyShells("the runtime", self.config.max_shells, "live shells")
            self._drop_if_empty(session)
            return _refuse(conn, http.HTTPStatus.TOO_MANY_REQUESTS, str(error))
        session.claims[conn] = plan.shell_id
        self._plans[conn] = plan
        watcher = asyncio.get_running_loop().create_task(self._release_when_closed(conn, session))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return None

    def _process_response(self, conn: ServerConnection, request: Request, response: Response) -> None:
        plan = self._plans.get(conn)
        if plan is not None and response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
            response.headers[SHELL_ID_HEADER] = plan.shell_id
            response.headers[SESSION_HEADER] = plan.session_id

    def _select_subprotocol(
        self, conn: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        # AgentCore answers a bearer client with the bare sentinel, never with the token itself.
        return Subprotocol(BEARER_SUBPROTOCOL) if BEARER_SUBPROTOCOL in offered else None

    async def _release_when_closed(self, conn: ServerConnection, session: _Session) -> None:
        await conn.wait_closed()
        session.claims.pop(conn, None)
        self._plans.pop(conn, None)
        self._drop_if_empty(session)

    def _drop_if_empty(self, session: _Session) -> None:
        if session.empty and self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]

    # ---- connections

    def _spawn(self, session: _Session, shell_id: str) -> Shell:
        def gone(shell: Shell) -> None:
            if session.shells.get(shell.shell_id) is shell:
                del session.shells[shell.shell_id]
            self._drop_if_empty(session)

        shell = Shell.spawn(
            shell_id,
            session.session_id,
            self._argv,
            env=self._env,
            cwd=self.config.cwd,
            buffer_size=self.config.buffer_size,
            idle_timeout=self.config.idle_timeout,
            terminate_grace=self.config.terminate_grace,
            on_gone=gone,
        )
        session.shells[shell_id] = shell
        self._shells.add(shell)
        shell.lifecycle.add_done_callback(lambda _: self._shells.discard(shell))
        return shell

    async def _handle(self, conn: ServerConnection) -> None:
        plan = self._plans.pop(conn, None)
        session = self._sessions.get(plan.session_id) if plan else None
        if plan is None or session is None:
            await conn.close(CloseCode.INTERNAL_ERROR, "connection was not planned")
            return
        shell = session.shells.get(plan.shell_id)
        if shell is None:
            try:
                shell = self._spawn(session, plan.shell_id)
            except ShellSpawnError as exc:
                log.error("shell.spawn_failed", shell_id=plan.shell_id, error=str(exc))
                with contextlib.suppress(ConnectionClosed):
                    await conn.send(encode(Channel.STATUS, status_payload.internal_error(str(exc))))
                    await conn.close(CloseCode.INTERNAL_ERROR, "shell failed to start")
                return
        att = Attachment(conn, name=_remote(conn))
        shell.attach(att)
        att.start()
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read(conn, shell, att))
        closed = loop.create_task(conn.wait_closed())
        stopping = loop.create_task(self._stopping.wait())
        try:
            # The reader may be stuck writing input to a program that does not read it; the
            # connection going away, or a shutdown, must still end this handler.
            await asyncio.wait([reader, closed, stopping], return_when=asyncio.FIRST_COMPLETED)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await reader
            if self._stopping.is_set():
                # Discard unread input so the client's answer to our 1001 is seen at once.
                with contextlib.suppress(ConnectionClosed):
                    async for _ in conn:
                        pass
        finally:
            for task in (reader, closed, stopping):
                task.cancel()
            shell.detach(att)
            await att.stop()

    async def _read(self, conn: ServerConnection, shell: Shell, att: Attachment) -> None:
        async for message in conn:
            if isinstance(message, str):
                log.info("frame.text_refused", shell_id=shell.shell_id, client=att.name)
                await conn.close(
                    CloseCode.UNSUPPORTED_DATA, "text messages are not supported; send binary frames"
                )
                return
            try:
                frame = decode(message)
            except EmptyFrame:
                log.info("frame.empty_ignored", shell_id=shell.shell_id, client=att.name)
                continue
            channel = frame.channel
            if channel == Channel.STDIN:
                await shell.write(frame.payload)
            elif channel == Channel.RESIZE:
                try:
                    shell.resize(Resize.parse(frame.payload))
                except InvalidResize as exc:
                    att.push(Channel.STDERR, f"recorder runtime: ignored RESIZE: {exc}\r\n".encode())
            elif channel == Channel.HEARTBEAT:
                att.push(Channel.HEARTBEAT)
            elif channel == Channel.CLOSE:
                log.info("shell.close_requested", shell_id=shell.shell_id, client=att.name)
                shell.end()
            else:
                log.info(
                    "frame.ignored",
                    shell_id=shell.shell_id,
                    channel=f"0x{channel:02x}",
                    size=len(frame.payload),
                )


async def serve_runtime(
    config: RuntimeConfig | None = None,
    *,
    ready: Callable[[Runtime], None] | None = None,
    stop: asyncio.Event | None = None,
    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> None:
    """Run a runtime until ``stop`` is set or one of ``signals`` arrives, then shut it down cleanly."""
    runtime = Runtime(config)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        await runtime.start()
        try:
            if ready is not None:
                ready(runtime)
            await stop.wait()
        finally:
            await runtime.close()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
