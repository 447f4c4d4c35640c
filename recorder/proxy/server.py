"""``recorder serve``: the recording proxy endpoint.

A client's upgrade request is validated, then the upstream shell is opened *before* the client's
101 is sent, so the upstream's refusals reach the client as the same HTTP status and its 101 ids
reach the client in the same headers. After the upgrade the relay runs and the tap records.
"""

from __future__ import annotations

import asyncio
import email.utils
import getpass
import hashlib
import http
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from recorder.cast.integrity import KEY_FILE, SIDECAR_SUFFIX, load_or_create_signing_key
from recorder.cast.reader import cast_summary
from recorder.errors import (
    AuthenticationFailed,
    CastError,
    IndexStoreError,
    ProtocolError,
    RecorderError,
)
from recorder.index.models import ConnectionStatus
from recorder.index.store import Index
from recorder.logfmt import get_logger
from recorder.protocol import (
    BEARER_SUBPROTOCOL,
    DEFAULT_QUALIFIER,
    MAX_MESSAGE_SIZE,
    SESSION_HEADER,
    SHELL_ID_HEADER,
    Channel,
    CloseCode,
    ShellRequest,
    encode,
    new_session_id,
    new_shell_id,
    parse_target,
)
from recorder.protocol.search import CUT_HEADER, is_search_target
from recorder.proxy.auth import Authenticator, Identity, RateLimiter, request_token
from recorder.proxy.hop import HopServerConnection
from recorder.proxy.policy import Policy
from recorder.proxy.relay import CLOSE_TIMEOUT, EndReason, Outcome, Relay
from recorder.proxy.searching import Answer, Auditors, SearchService
from recorder.proxy.tap import (
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_MAX_BUFFER,
    WRITER_STALL_TIMEOUT,
    FailurePolicy,
    RecordingResult,
    RecordingTap,
    context_header,
)
from recorder.proxy.upstream import OpenUpstream, Upstream, UpstreamRefused, UpstreamUnavailable
from recorder.storage.local import LocalStorage

log = get_logger(__name__)

#: The whole opening handshake, upstream connection included, must finish within this.
HANDSHAKE_TIMEOUT = 30.0
#: How long shutdown waits for recordings to be finalised.
SHUTDOWN_TIMEOUT = 15.0
#: The body of every 401: it says nothing about why.
UNAUTHENTICATED_BODY = "authentication required\n"
FORBIDDEN_BODY = "forbidden\n"
RATE_LIMITED_BODY = "too many failed attempts; try again later\n"
#: Without a size from the client, recordings start at the classic terminal size.
DEFAULT_COLS, DEFAULT_ROWS = 80, 24


@dataclass(slots=True)
class ProxySettings:
    """What ``recorder serve`` was asked to do."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8765
    cast_version: int = 2
    max_record_buffer: int = DEFAULT_MAX_BUFFER
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    ping_interval: float | None = 20.0
    #: Who may connect: None serves without authentication (``--auth none``, loopback only).
    authenticator: Authenticator | None = None
    #: What they may open: None lets every authenticated caller open any shell.
    policy: Policy | None = None
    #: Limit on failed authentications per client address.
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    #: When a recording cannot be written: close the connection (fail closed), or go on with a gap.
    on_record_failure: FailurePolicy = FailurePolicy.CLOSE
    #: A recording write that makes no progress for this long counts as a failure.
    writer_stall_timeout: float = WRITER_STALL_TIMEOUT
    #: Mask input typed while the remote terminal does not echo it (password prompts).
    mask_secrets: bool = True
    #: Who may search the index through the proxy (``/v1/search``); nobody when empty.
    auditors: Auditors = field(default_factory=Auditors)


@dataclass(slots=True)
class _Pending:
    """An upstream opened during a client's handshake, waiting for the client's handler."""

    request: ShellRequest
    upstream: OpenUpstream
    principal: str | None
    client_address: str
    claimed: bool = False


@dataclass(slots=True)
class _Live:
    relay: Relay
    conn_id: int
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


def _address(connection: ServerConnection) -> str:
    peer = connection.remote_address
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer)


class ProxyServer:
    """The recording proxy: endpoint, upstream, recordings and index, wired together."""

    def __init__(
        self,
        settings: ProxySettings,
        upstream: Upstream,
        index: Index,
        *,
        on_finished: Callable[[int], None] | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.index = index
        # Post-processing of a finished recording (command extraction, text indexing): CPU work that
        # must stay off the relay path, so it runs one job at a time in its own thread.
        self._on_finished = on_finished
        #: Called at shutdown before post-processing is waited for: it may cut a long job short.
        self._on_stop = on_stop
        self._post = ThreadPoolExecutor(max_workers=1, thread_name_prefix="post-process")
        self.storage = LocalStorage(settings.data_dir)
        #: Auditors' searches (``recorder search --server``); None when no auditor is named.
        self.search = SearchService(index, settings.auditors) if settings.auditors else None
        #: The recordings' signing key, loaded (or made) by start().
        self.signer: Ed25519PrivateKey | None = None
        self._server: Server | None = None
        self._pending: dict[int, _Pending] = {}
        self._live: dict[int, _Live] = {}
        self._handlers: set[asyncio.Task[Any]] = set()
        self._shutting_down = False
        self._stopped = asyncio.Event()

    @property
    def port(self) -> int:
        """The port actually listened on (useful with port 0)."""
        assert self._server is not None
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        """Recover from a crash, start the upstream and listen."""
        self.storage.ensure()
        # Checkpoints and seals are signed with this key, made on first start (0600).
        self.signer = await asyncio.to_thread(load_or_create_signing_key, self.settings.data_dir / KEY_FILE)
        recovered = await asyncio.to_thread(self.recover)
        if self._on_finished is not None:
            # What a killed proxy recorded up to its last flush is indexed like any other recording,
            # and so is what a stopped one had not indexed yet.
            unindexed = await asyncio.to_thread(self.index.unindexed_connections)
            for conn_id in dict.fromkeys([*recovered, *unindexed]):
                self._post.submit(self._post_process, conn_id)
        await self.upstream.start()
        self._server = await serve(
            self._handle,
            self.settings.host,
            self.settings.port,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=_select_subprotocol,
            max_size=MAX_MESSAGE_SIZE,
            open_timeout=HANDSHAKE_TIMEOUT,
            create_connection=HopServerConnection,
            close_timeout=CLOSE_TIMEOUT,
            ping_interval=self.settings.ping_interval,
            compression=None,
        )
        log.info("proxy.listening", url=f"ws://{self.settings.host}:{self.port}", upstream=self.upstream.name)

    def recover(self) -> list[int]:
        """Mark connections left active by a killed proxy as interrupted, sized from their files."""
        recovered: list[int] = []
        for row in self.index.active_connections():
            size, digest, duration = 0, None, 0.0
            if row.recording_path:
                path = self.storage.path(row.recording_path)
                try:
                    summary = cast_summary(path)
                    size, duration = summary.size, summary.duration
                    digest = _sha256(path)
                except (OSError, CastError) as exc:
                    log.warning("recover.unreadable", connection=row.id, path=path, error=exc)
            self.index.mark_interrupted(row.id, duration=duration, recording_size=size, sha256=digest)
            recovered.append(row.id)
        if recovered:
            log.warning("recover.interrupted", connections=len(recovered))
        return recovered

    # -- the opening handshake -----------------------------------------------------------

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path in ("/healthz", "/health"):
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if self._shutting_down:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "proxy is shutting down\n")
        address = _address(connection)
        host = _host(connection)
        if is_search_target(request.path):
            return await self._search(connection, request, address, host)
        identity = None
        if self.settings.authenticator is not None:
            refused = await self._authenticate(connection, request, address, host)
            if isinstance(refused, Response):
                return refused
            identity = refused
        try:
            shell_request = parse_target(request.path, request.headers)
        except ProtocolError as exc:
            status = (
                http.HTTPStatus.NOT_FOUND if "no shell endpoint" in str(exc) else http.HTTPStatus.BAD_REQUEST
            )
            await self._refuse(address, None, None, int(status), str(exc))
            return connection.respond(status, f"{exc}\n")
        principal = identity.principal if identity is not None else None
        if self.settings.policy is not None:
            decision = self.settings.policy.decide(
                principal,
                identity.groups if identity is not None else (),
                str(shell_request.arn),
                shell_request.qualifier or DEFAULT_QUALIFIER,
            )
            if not decision.allowed:
                await self._refuse(address, principal, shell_request, 403, f"policy: {decision.rule}")
                return connection.respond(http.HTTPStatus.FORBIDDEN, FORBIDDEN_BODY)
        # Ids the client left out are chosen here, so the recording knows them whatever the upstream says.
        shell_request = ShellRequest(
            arn=shell_request.arn,
            qualifier=shell_request.qualifier,
            shell_id=shell_request.shell_id or new_shell_id(),
            session_id=shell_request.session_id or new_session_id(),
        )
        try:
            opened = await self.upstream.open(shell_request)
        except UpstreamRefused as exc:
            await self._refuse(address, principal, shell_request, exc.status, exc.body.strip() or str(exc))
            return connection.respond(http.HTTPStatus(exc.status), exc.body or f"{exc}\n")
        except UpstreamUnavailable as exc:
            await self._refuse(address, principal, shell_request, 502, str(exc))
            log.warning("upstream.unavailable", error=exc)
            return connection.respond(http.HTTPStatus.BAD_GATEWAY, "upstream unavailable\n")
        pending = _Pending(shell_request, opened, principal, address)
        key = id(connection)
        self._pending[key] = pending
        guard = asyncio.get_running_loop().create_task(self._release_unclaimed(connection, key))
        self._handlers.add(guard)
        guard.add_done_callback(self._handlers.discard)
        return None

    async def _search(
        self, connection: ServerConnection, request: Request, address: str, host: str
    ) -> Response:
        """Answer ``GET /v1/search`` (``recorder.proxy.searching``): auditors only, each search logged."""
        if self.search is None:
            return connection.respond(
                http.HTTPStatus.NOT_FOUND, "search is not enabled on this proxy (recorder serve --auditor)\n"
            )
        if self.settings.authenticator is None:
            # Nobody to log the search under, and anyone on this machine could ask.
            await self._refuse(address, None, None, 403, "search: the proxy runs without authentication")
            return connection.respond(http.HTTPStatus.FORBIDDEN, "search needs an authenticating proxy\n")
        identity = await self._authenticate(connection, request, address, host)
        if isinstance(identity, Response):
            return identity
        if not self.search.auditors.admit(identity.principal, identity.groups):
            await self._refuse(address, identity.principal, None, 403, "search: not an auditor")
            return connection.respond(http.HTTPStatus.FORBIDDEN, FORBIDDEN_BODY)
        answer = await self.search.answer(request.path, identity.principal, address)
        if answer.status == http.HTTPStatus.BAD_REQUEST:
            await self._refuse(
                address, identity.principal, None, 400, f"search: {answer.encoded().decode().strip()}"
            )
        return _search_response(answer)

    def _process_response(self, connection: ServerConnection, request: Request, response: Response) -> None:
        pending = self._pending.get(id(connection))
        if pending is None:
            return
        if response.status_code != http.HTTPStatus.SWITCHING_PROTOCOLS:
            return  # _release_unclaimed closes the upstream
        opened = pending.upstream
        response.headers[SHELL_ID_HEADER] = opened.shell_id or pending.request.shell_id or ""
        response.headers[SESSION_HEADER] = opened.session_id or pending.request.session_id or ""

    async def _release_unclaimed(self, connection: ServerConnection, key: int) -> None:
        """Close an upstream whose client never completed its handshake."""
        await connection.wait_closed()
        pending = self._pending.pop(key, None)
        if pending is not None and not pending.claimed:
            log.info("upstream.released", reason="client handshake did not complete")
            await pending.upstream.ws.close(CloseCode.GOING_AWAY, "client went away")

    async def _authenticate(
        self, connection: ServerConnection, request: Request, address: str, host: str
    ) -> Identity | Response:
        """The caller's identity, or the 429/401 response that refuses it (recorded in the index)."""
        authenticator = self.settings.authenticator
        assert authenticator is not None
        limiter = self.settings.rate_limiter
        target = _target_or_none(request)
        wait = limiter.retry_after(host)
        if wait is not None:
            await self._refuse(address, None, target, 429, "rate limited: too many failed authentications")
            response = connection.respond(http.HTTPStatus.TOO_MANY_REQUESTS, RATE_LIMITED_BODY)
            response.headers["Retry-After"] = str(max(1, round(wait)))
            return response
        token = request_token(request.headers, _offered_subprotocols(request))
        try:
            return await asyncio.to_thread(authenticator.authenticate, token)
        except AuthenticationFailed as exc:
            blocked = limiter.failure(host)
            reason = f"authentication failed ({authenticator.name}): {exc.reason}"
            if blocked:
                reason += "; address rate limited"
            await self._refuse(address, exc.principal, target, 401, reason)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the caller is refused, never let in
            # The credential store or key set itself failed (database down, JWKS unreachable).
            log.error("auth.error", error=repr(exc))
            await self._refuse(address, None, target, 401, f"authentication unavailable: {exc}")
        response = connection.respond(http.HTTPStatus.UNAUTHORIZED, UNAUTHENTICATED_BODY)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def _refuse(
        self, address: str, principal: str | None, req: ShellRequest | None, status: int, reason: str
    ) -> None:
        log.info("proxy.refused", client=address, status=status, reason=reason)
        try:
            await asyncio.to_thread(
                self.index.record_refusal,
                at=datetime.now(UTC),
                principal=principal,
                client_address=address,
                runtime_arn=str(req.arn) if req else None,
                qualifier=req.qualifier if req else None,
                shell_id=req.shell_id if req else None,
                session_id=req.session_id if req else None,
                http_status=status,
                reason=reason[:500],
            )
        except IndexStoreError as exc:
            log.error("index.refusal_not_recorded", error=exc)

    # -- a connection ----------------------------------------------------------------------

    async def _handle(self, client: ServerConnection) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve_connection(client)
        finally:
            self._handlers.discard(task)

    async def _serve_connection(self, client: ServerConnection) -> None:
        pending = self._pending.pop(id(client), None)
        if pending is None:
            await client.close(CloseCode.INTERNAL_ERROR, "no upstream")
            return
        pending.claimed = True
        upstream_ws = pending.upstream.ws
        req = pending.request
        shell_id = pending.upstream.shell_id or req.shell_id or ""
        session_id = pending.upstream.session_id or req.session_id or ""
        started = datetime.now(UTC)
        start_mono = time.monotonic()
        try:
            rel = self.storage.new_recording(started, shell_id)
            fd = self.storage.open_new(rel)
        except OSError as exc:
            await self._fail_closed(client, upstream_ws, f"cannot create the recording: {exc.strerror}")
            return
        try:
            chain_fd = self.storage.open_new(rel + SIDECAR_SUFFIX)
        except OSError as exc:
            os.close(fd)
            await self._fail_closed(client, upstream_ws, f"cannot create the recording: {exc.strerror}")
            return
        try:
            conn_id = await asyncio.to_thread(
                self.index.open_connection,
                runtime_arn=str(req.arn),
                qualifier=req.qualifier,
                session_id=session_id,
                shell_id=shell_id,
                principal=pending.principal,
                client_address=pending.client_address,
                upstream=self.upstream.name,
                started_at=started,
                recording_path=rel,
                cast_version=self.settings.cast_version,
                cols=DEFAULT_COLS,
                rows=DEFAULT_ROWS,
            )
        except RecorderError as exc:
            os.close(fd)
            os.close(chain_fd)
            await self._fail_closed(client, upstream_ws, f"cannot index the recording: {exc}")
            return
        context = {
            "connection_id": conn_id,
            "principal": pending.principal,
            "client_address": pending.client_address,
            "runtime_arn": str(req.arn),
            "qualifier": req.qualifier,
            "runtime_session_id": session_id,
            "shell_id": shell_id,
            "upstream": self.upstream.name,
            "recorder_host_user": getpass.getuser(),
        }
        header = context_header(
            self.settings.cast_version, DEFAULT_COLS, DEFAULT_ROWS, int(started.timestamp()), context
        )
        relay: Relay | None = None

        def on_failure(exc: Exception) -> None:
            if relay is not None:
                live.tasks.add(
                    asyncio.get_running_loop().create_task(self._record_failed(client, relay, exc))
                )

        tap = RecordingTap(
            fd,
            header,
            version=self.settings.cast_version,
            start=start_mono,
            max_buffer=self.settings.max_record_buffer,
            flush_interval=self.settings.flush_interval,
            on_failure=on_failure,
            chain_fd=chain_fd,
            signer=self.signer,
            policy=self.settings.on_record_failure,
            stall_timeout=self.settings.writer_stall_timeout,
            mask_secrets=self.settings.mask_secrets,
        )
        relay = Relay(client, upstream_ws, tap)
        live = _Live(relay, conn_id)
        self._live[conn_id] = live
        tap.begin()
        tap.marker(
            f"attach principal={pending.principal or '-'} from={pending.client_address}", at=start_mono
        )
        log.info(
            "connection.open",
            id=conn_id,
            shell_id=shell_id,
            session_id=session_id,
            client=pending.client_address,
        )
        outcome = Outcome(EndReason.ERROR, CloseCode.INTERNAL_ERROR, "internal error")
        try:
            outcome = await relay.run()
        except Exception as exc:  # noqa: BLE001 - a relay bug must still finalise the recording
            log.error("relay.failed", id=conn_id, error=repr(exc))
        finally:
            tap.marker(_end_marker(outcome))
            result = await tap.close()
            self._live.pop(conn_id, None)
            await asyncio.gather(*live.tasks, return_exceptions=True)
            await self._finish(conn_id, outcome, result, tap.failure)

    async def _finish(
        self, conn_id: int, outcome: Outcome, result: RecordingResult, failure: Exception | None
    ) -> None:
        reason = EndReason.RECORD_FAILURE if failure is not None else outcome.reason
        try:
            await asyncio.to_thread(
                self.index.finish_connection,
                conn_id,
                ended_at=datetime.now(UTC),
                status=ConnectionStatus.ENDED,
                end_reason=reason,
                close_code=outcome.close_code,
                exit_code=result.exit_code,
                counters=result.counters,
                invalid_utf8=result.invalid_utf8,
                recording_size=result.size,
                sha256=result.sha256,
                reconnected=result.reconnected,
                bytes_dropped=result.bytes_dropped or 0,
                cols=result.cols,
                rows=result.rows,
            )
        except RecorderError as exc:
            log.error("index.finish_failed", id=conn_id, error=exc)
        if self._on_finished is not None:
            self._post.submit(self._post_process, conn_id)
        log.info(
            "connection.closed",
            id=conn_id,
            reason=reason.value,
            close_code=outcome.close_code,
            exit_code=result.exit_code,
            bytes=result.size,
            gap_bytes=result.gap_bytes,
            masked_chars=result.masked_chars,
            sealed=result.sealed,
        )

    def _post_process(self, conn_id: int) -> None:
        assert self._on_finished is not None
        try:
            self._on_finished(conn_id)
        except Exception as exc:  # noqa: BLE001 - a failed post-process must not take the proxy down
            log.error("post_process.failed", id=conn_id, error=repr(exc))

    async def _record_failed(self, client: ServerConnection, relay: Relay, exc: Exception) -> None:
        """Fail closed: tell the client why, end its connection, leave the shell detached."""
        message = f"recorder: this session can no longer be recorded ({exc}); closing the connection\r\n"
        try:
            await client.send(encode(Channel.STDERR, message.encode()))
        except Exception:  # noqa: BLE001 - the client may already be gone
            pass
        relay.end(Outcome(EndReason.RECORD_FAILURE, CloseCode.INTERNAL_ERROR, "session no longer recorded"))

    async def _fail_closed(self, client: ServerConnection, upstream_ws: Any, why: str) -> None:
        log.error("connection.not_recorded", reason=why)
        try:
            notice = f"recorder: {why}; refusing an unrecorded session\r\n"
            await client.send(encode(Channel.STDERR, notice.encode()))
        except Exception:  # noqa: BLE001
            pass
        await asyncio.gather(
            client.close(CloseCode.INTERNAL_ERROR, "session cannot be recorded"),
            upstream_ws.close(CloseCode.GOING_AWAY, "proxy could not record"),
            return_exceptions=True,
        )

    # -- shutdown -------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Every client gets 1001, every recording is finalised, the upstream is stopped."""
        if self._shutting_down:
            await self._stopped.wait()
            return
        self._shutting_down = True
        log.info("proxy.shutdown", connections=len(self._live))
        if self.search is not None:
            self.search.close()  # queued searches are answered 503 now, not run after the shutdown
        for live in list(self._live.values()):
            live.relay.end(Outcome(EndReason.PROXY_SHUTDOWN, CloseCode.GOING_AWAY, "proxy shutting down"))
        handlers = [t for t in self._handlers if t is not asyncio.current_task()]
        if handlers:
            _, still = await asyncio.wait(handlers, timeout=SHUTDOWN_TIMEOUT)
            for task in still:
                task.cancel()
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        await self.upstream.stop()
        # Post-processing is not waited for: indexing a long recording can take minutes. What it
        # had not finished is indexed at the next start (Index.unindexed_connections).
        if self._on_stop is not None:
            self._on_stop()
        await asyncio.to_thread(self._post.shutdown, wait=True, cancel_futures=True)
        self._stopped.set()

    async def run_until_signalled(self, ready: Callable[[ProxyServer], None] | None = None) -> None:
        """Start, serve until SIGTERM or SIGINT, then shut down cleanly."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # A file-size limit must fail the write (EFBIG), not kill the proxy.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        await self.start()
        if ready is not None:
            ready(self)
        await stop.wait()
        await self.shutdown()


def _search_response(answer: Answer) -> Response:
    """The HTTP response for a search's answer; its body is already bytes (encoded off the loop)."""
    status = http.HTTPStatus(answer.status)
    body = answer.encoded()
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", answer.content_type),
        ]
    )
    if answer.retry_after is not None:
        headers["Retry-After"] = str(answer.retry_after)
    if answer.cut:
        headers[CUT_HEADER] = str(answer.cut)
    return Response(status.value, status.phrase, headers, body)


def _host(connection: ServerConnection) -> str:
    peer = connection.remote_address
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


def _offered_subprotocols(request: Request) -> list[str]:
    return [
        p.strip() for value in request.headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",")
    ]


def _target_or_none(request: Request) -> ShellRequest | None:
    """The request's target for the refusal record, when it parses (it is validated later anyway)."""
    try:
        return parse_target(request.path, request.headers)
    except ProtocolError:
        return None


def _select_subprotocol(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """Answer the bearer scheme with its bare sentinel, as AgentCore does; otherwise no subprotocol."""
    return Subprotocol(BEARER_SUBPROTOCOL) if BEARER_SUBPROTOCOL in offered else None


def _end_marker(outcome: Outcome) -> str:
    text = {
        EndReason.EXIT: "shell exited",
        EndReason.CLIENT_CLOSED: "client closed the connection",
        EndReason.CLIENT_DROPPED: "client connection lost; shell left detached",
        EndReason.UPSTREAM_CLOSED: "upstream closed the connection",
        EndReason.KICKED: "kicked: another client attached to this shell",
        EndReason.PROXY_SHUTDOWN: "proxy shutdown; shell left detached",
        EndReason.ERROR: "proxy error",
        EndReason.RECORD_FAILURE: "recording failed; connection closed",
    }[outcome.reason]
    if outcome.close_code is not None:
        text += f" (close {outcome.close_code})"
    return text


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
