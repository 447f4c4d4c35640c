"""One client connection to a shell: connect, send keys and sizes, read events, detach or end it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from recorder.errors import (
    ConfigError,
    ConnectFailed,
    EmptyFrame,
    FrameTooLarge,
    HandshakeRejected,
    SessionClosed,
)
from recorder.errors import (
    InvalidStatus as InvalidStatusPayload,
)
from recorder.logfmt import get_logger
from recorder.protocol import (
    DEFAULT_QUALIFIER,
    LOCAL_RUNTIME_ARN,
    MAX_MESSAGE_SIZE,
    SESSION_HEADER,
    SHELL_ID_HEADER,
    Channel,
    CloseCode,
    Confirmation,
    Frame,
    Resize,
    RuntimeArn,
    ShellRequest,
    Termination,
    chunks,
    decode,
    encode,
    new_session_id,
    new_shell_id,
    validate_qualifier,
    validate_session_id,
    validate_shell_id,
)
from recorder.protocol import status as status_payload
from recorder.protocol.paths import is_loopback_url

log = get_logger(__name__)

#: Seconds between RFC 6455 pings; keeps idle connections open through intermediaries.
DEFAULT_PING_INTERVAL = 20.0
#: Seconds to wait for a pong before the connection counts as lost.
DEFAULT_PING_TIMEOUT = 20.0
#: Seconds allowed for TCP, TLS and the WebSocket upgrade together.
DEFAULT_OPEN_TIMEOUT = 10.0
#: Seconds to wait for the server to end the shell after a CLOSE frame before closing anyway.
DEFAULT_END_TIMEOUT = 5.0
#: Seconds to wait for the server's side of the WebSocket closing handshake before dropping TCP.
DEFAULT_CLOSE_TIMEOUT = 10.0
#: Longest part of an HTTP error body quoted in a one-line error.
MAX_ERROR_BODY = 300


@dataclass(frozen=True, slots=True)
class ShellTarget:
    """Where to connect and as whom: base URL, validated ShellRequest (ids always set), credentials."""

    base_url: str
    request: ShellRequest
    token: str | None = field(default=None, repr=False)
    ca_bundle: Path | None = None

    @classmethod
    def create(
        cls,
        url: str,
        runtime_arn: str = LOCAL_RUNTIME_ARN,
        *,
        qualifier: str | None = None,
        shell_id: str | None = None,
        session_id: str | None = None,
        token: str | None = None,
        ca_bundle: Path | None = None,
    ) -> ShellTarget:
        """Validate everything a connection needs; new shell and session ids when none are given."""
        base = _check_url(url)
        arn = RuntimeArn.parse(runtime_arn)
        if qualifier is not None:
            validate_qualifier(qualifier)
        shell_id = validate_shell_id(shell_id) if shell_id is not None else new_shell_id()
        session_id = validate_session_id(session_id) if session_id is not None else new_session_id()
        if token is not None and (not token or any(not 0x20 < ord(c) < 0x7F for c in token)):
            raise ConfigError("the token must be printable ASCII without spaces")
        if ca_bundle is not None:
            if not base.startswith("wss://"):
                raise ConfigError("--ca-bundle applies to wss:// URLs only")
            if not ca_bundle.is_file():
                raise ConfigError(f"CA bundle {ca_bundle} is not a readable file")
        request = ShellRequest(arn=arn, qualifier=qualifier, shell_id=shell_id, session_id=session_id)
        return cls(base_url=base, request=request, token=token, ca_bundle=ca_bundle)

    @property
    def url(self) -> str:
        """The full WebSocket URL: base URL, shell path, qualifier and shellId."""
        return self.base_url + self.request.target()

    @property
    def shell_id(self) -> str:
        """The shellId sent in the query string."""
        assert self.request.shell_id is not None
        return self.request.shell_id

    @property
    def session_id(self) -> str:
        """The runtime session id sent in the session header."""
        assert self.request.session_id is not None
        return self.request.session_id

    @property
    def qualifier(self) -> str:
        """The endpoint qualifier, DEFAULT when none was given."""
        return self.request.qualifier or DEFAULT_QUALIFIER

    @property
    def is_loopback(self) -> bool:
        """True when the URL's host is this machine."""
        return is_loopback_url(self.base_url)


def _check_url(url: str) -> str:
    try:
        split = urlsplit(url)
        split.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"bad URL {url!r}: {exc}") from None
    if split.scheme not in ("ws", "wss"):
        raise ConfigError(f"bad URL {url!r}: use ws:// or wss://")
    if not split.hostname:
        raise ConfigError(f"bad URL {url!r}: no host")
    if split.query or split.fragment:
        raise ConfigError(f"bad URL {url!r}: no query string or fragment allowed")
    return url.rstrip("/")


# ---- what the server sends, as values ----


@dataclass(frozen=True, slots=True)
class Output:
    """Raw PTY output bytes (STDOUT)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A platform diagnostic (STDERR), not the shell's own stderr."""

    text: str


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The connection confirmation STATUS (and, after a reconnect's replay, the bytesDropped one)."""

    status: Confirmation


@dataclass(frozen=True, slots=True)
class Terminated:
    """The termination STATUS: the shell exited, was killed, or the platform failed."""

    status: Termination


@dataclass(frozen=True, slots=True)
class Shutdown:
    """A CLOSE frame from the server: the platform is ending the shell (eviction, TTL)."""


@dataclass(frozen=True, slots=True)
class Other:
    """Any other frame: a channel the client does not handle, or an unparsable STATUS."""

    frame: Frame


ShellEvent = Output | Diagnostic | Confirmed | Terminated | Shutdown | Other


class EndKind(Enum):
    """How a connection ended."""

    EXITED = "exited"  # termination STATUS received
    DETACHED = "detached"  # we closed the WebSocket without a CLOSE frame; the shell lives on
    ENDED = "ended"  # we sent a CLOSE frame: the shell was ended on our request
    SHUTDOWN = "shutdown"  # the server sent a CLOSE frame
    KICKED = "kicked"  # close 4000: another client attached to the shell
    GOING_AWAY = "going-away"  # close 1001: the server is restarting; reattach
    CLOSED = "closed"  # the server closed normally without an exit status
    DISCONNECTED = "disconnected"  # abnormal close (1006, 1011, a ping timeout, ...)


@dataclass(frozen=True, slots=True)
class Ending:
    """The end of one connection: why, the exit status if any, the close code, a local signal if any."""

    kind: EndKind
    termination: Termination | None = None
    close_code: int | None = None
    close_reason: str = ""
    signal: int | None = None

    @property
    def shell_alive(self) -> bool:
        """True when the remote shell should still be running and can be reattached."""
        return self.kind in (EndKind.DETACHED, EndKind.GOING_AWAY, EndKind.DISCONNECTED, EndKind.KICKED)


class ShellClient:
    """An async client for one shell connection over the AgentCore shell protocol."""

    def __init__(
        self,
        target: ShellTarget,
        *,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
        ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
        open_timeout: float | None = DEFAULT_OPEN_TIMEOUT,
        end_timeout: float = DEFAULT_END_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        max_message_size: int = MAX_MESSAGE_SIZE,
    ) -> None:
        self.target = target
        #: The ids in use: what was sent, replaced by the 101 response headers when present.
        self.shell_id = target.shell_id
        self.session_id = target.session_id
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._open_timeout = open_timeout
        self._end_timeout = end_timeout
        self._close_timeout = close_timeout
        self._max_message_size = max_message_size
        self._ws: ClientConnection | None = None
        self._detached = False
        self._ended_by_us = False
        self._shutdown = False
        self._termination: Termination | None = None

    async def __aenter__(self) -> ShellClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Leaving the block detaches, like dropping the connection: the shell stays reattachable.
        await self.detach()

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open."""
        return self._ws is not None and self._ws.close_code is None

    async def connect(self) -> None:
        """Open the WebSocket; raises ConnectFailed (HandshakeRejected for an HTTP error status)."""
        if self._ws is not None:
            raise RuntimeError("ShellClient.connect() called twice")
        target = self.target
        headers = {SESSION_HEADER: target.session_id}
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        tls: ssl.SSLContext | None = None
        if target.ca_bundle is not None:
            try:
                tls = ssl.create_default_context(cafile=str(target.ca_bundle))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load CA bundle {target.ca_bundle}: {exc}") from None
        log.info(
            "client.connect", url=target.base_url, shell_id=target.shell_id, session_id=target.session_id
        )
        try:
            self._ws = await connect(
                target.url,
                additional_headers=headers,
                ssl=tls,
                # An HTTP(S)_PROXY from the environment must not capture the local proxy's traffic.
                proxy=None if target.is_loopback else True,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                close_timeout=self._close_timeout,
                max_size=self._max_message_size,
            )
        except InvalidStatus as exc:
            response = exc.response
            body = _one_line(response.body.decode("utf-8", errors="replace"), MAX_ERROR_BODY)
            message = f"{target.base_url} refused the shell connection: HTTP {response.status_code}"
            if response.reason_phrase:
                message += f" {response.reason_phrase}"
            if body:
                message += f": {body}"
            raise HandshakeRejected(message, response.status_code, body) from None
        except InvalidURI as exc:
            raise ConfigError(f"bad URL {target.base_url!r}: {exc}") from None
        except ConnectionRefusedError:
            raise ConnectFailed(f"cannot connect to {target.base_url}: connection refused") from None
        except TimeoutError:
            raise ConnectFailed(
                f"cannot connect to {target.base_url}: no answer within {self._open_timeout} s"
            ) from None
        except ssl.SSLError as exc:
            raise ConnectFailed(
                f"cannot connect to {target.base_url}: TLS: {_one_line(str(exc), 200)}"
            ) from None
        except (OSError, InvalidHandshake) as exc:
            raise ConnectFailed(f"cannot connect to {target.base_url}: {_one_line(str(exc), 200)}") from None
        upgrade = self._ws.response
        headers_in = upgrade.headers if upgrade is not None else None
        if headers_in is not None:
            self.shell_id = headers_in.get(SHELL_ID_HEADER) or self.shell_id
            self.session_id = headers_in.get(SESSION_HEADER) or self.session_id
        log.info("client.connected", shell_id=self.shell_id, session_id=self.session_id)

    def _require(self) -> ClientConnection:
        if self._ws is None:
            raise SessionClosed("not connected: call connect() first")
        return self._ws

    async def _send(self, message: bytes) -> None:
        ws = self._require()
        try:
            await ws.send(message)
        except ConnectionClosed:
            raise SessionClosed(f"the connection to shell {self.shell_id} has ended") from None

    async def send_input(self, data: bytes) -> None:
        """Send keystrokes or a paste as STDIN frames, split so each fits one message."""
        if not data:
            return
        for piece in chunks(data, self._max_message_size - 1):
            await self._send(encode(Channel.STDIN, piece, max_size=self._max_message_size))

    async def resize(self, size: Resize) -> None:
        """Tell the remote PTY the terminal's size (a RESIZE frame)."""
        await self._send(encode(Channel.RESIZE, size.serialize(), max_size=self._max_message_size))

    async def send_frame(self, frame: Frame) -> None:
        """Send one frame as it is (for channels this class has no method for)."""
        await self._send(frame.serialize(self._max_message_size))

    async def events(self) -> AsyncIterator[ShellEvent]:
        """Yield what the server sends until the connection ends; then ``ending`` says why."""
        ws = self._require()
        try:
            while True:
                try:
                    message = await ws.recv()
                except ConnectionClosed:
                    break
                if isinstance(message, str):
                    log.warning("client.text_message_ignored", size=len(message))
                    continue
                try:
                    frame = decode(message, max_size=self._max_message_size)
                except (EmptyFrame, FrameTooLarge) as exc:
                    log.warning("client.bad_frame_ignored", error=str(exc))
                    continue
                event = self._event(frame)
                if event is None:
                    continue
                yield event
                if isinstance(event, Terminated):
                    # The shell is gone; nothing useful can follow, so do not wait for the server.
                    await ws.close()
        finally:
            ending = self.ending
            if ending is not None:
                log.info(
                    "client.ended",
                    kind=ending.kind.value,
                    close_code=ending.close_code,
                    shell_id=self.shell_id,
                )

    def _event(self, frame: Frame) -> ShellEvent | None:
        channel = frame.channel
        if channel == Channel.STDOUT:
            return Output(frame.payload)
        if channel == Channel.STDERR:
            return Diagnostic(frame.payload.decode("utf-8", errors="replace"))
        if channel == Channel.HEARTBEAT:
            return None
        if channel == Channel.CLOSE:
            self._shutdown = True
            return Shutdown()
        if channel == Channel.STATUS:
            try:
                info = status_payload.parse(frame.payload)
            except InvalidStatusPayload as exc:
                log.warning("client.bad_status", error=str(exc))
                return Other(frame)
            if isinstance(info, Confirmation):
                return Confirmed(info)
            self._termination = info
            return Terminated(info)
        return Other(frame)

    @property
    def ending(self) -> Ending | None:
        """Why the connection ended; None while it is open (or before connect)."""
        ws = self._ws
        if ws is None or ws.close_code is None:
            return None
        code = ws.close_code
        reason = ws.close_reason or ""
        if self._termination is not None:
            kind = EndKind.EXITED
        elif self._detached:
            kind = EndKind.DETACHED
        elif self._shutdown:
            kind = EndKind.SHUTDOWN
        elif self._ended_by_us:
            kind = EndKind.ENDED
        elif code == CloseCode.KICKED:
            kind = EndKind.KICKED
        elif code == CloseCode.GOING_AWAY:
            kind = EndKind.GOING_AWAY
        elif code == CloseCode.NORMAL:
            kind = EndKind.CLOSED
        else:
            kind = EndKind.DISCONNECTED
        return Ending(kind=kind, termination=self._termination, close_code=code, close_reason=reason)

    async def detach(self) -> None:
        """Close the WebSocket without a CLOSE frame: the shell keeps running and can be reattached."""
        if self._ws is None or self._ws.close_code is not None:
            return
        self._detached = True
        log.info("client.detach", shell_id=self.shell_id)
        await self._ws.close(CloseCode.NORMAL, "detach")

    async def close(self, graceful: bool = True) -> None:
        """End the connection.

        graceful=True sends a CLOSE frame, which ends the remote shell, then closes the WebSocket.
        graceful=False drops the TCP connection without a closing handshake, as a network failure
        would; the shell stays alive for a reattach.
        """
        ws = self._ws
        if ws is None or ws.close_code is not None:
            return
        if not graceful:
            log.info("client.abort", shell_id=self.shell_id)
            ws.transport.abort()
            with contextlib.suppress(Exception):
                await ws.wait_closed()
            return
        self._ended_by_us = True
        if self._termination is not None:
            await ws.close()  # the shell has already ended: nothing to ask for
            return
        log.info("client.end_shell", shell_id=self.shell_id)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(encode(Channel.CLOSE))
            # Give the server time to end the shell and close on its side first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.wait_closed(), self._end_timeout)
        await ws.close()


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
