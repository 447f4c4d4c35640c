"""Edge fakes of AWS for the AgentCore upstream tests: a TLS WebSocket endpoint and STS, on loopback.

Both verify SigV4 the way AWS does, by recomputing the signature with botocore from what was
received (method, URL, the headers named in SignedHeaders, X-Amz-Date) and comparing in constant
time; a bad one gets an AWS-like 403 ``{"message": ...}``. Behind the shell endpoint there is a real
``recorder runtime``: a verified connection is relayed to it, so the shell is real.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import ssl
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import trustme
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response

from recorder.errors import ProtocolError
from recorder.protocol import SESSION_HEADER, SHELL_ID_HEADER, parse_target

#: The known test identity; nothing else verifies.
ACCESS_KEY = "AKIARECORDERTEST0001"
SECRET_KEY = "recorder/test+secret/0123456789abcdefghijKLMN"
ACCOUNT = "123456789012"
CALLER_ARN = f"arn:aws:iam::{ACCOUNT}:user/recorder-test"
#: AWS refuses requests whose X-Amz-Date is further than this from its clock.
MAX_SKEW = timedelta(minutes=5)
#: The service's longest presigned URL lifetime (seconds).
MAX_PRESIGN_EXPIRES = 300
#: shellIds that make the stand-in refuse as AWS does when it has no capacity.
THROTTLE_SHELL_ID = "standin-throttle"
QUOTA_SHELL_ID = "standin-quota"
START_TIMEOUT = 10.0


class Rejected(Exception):
    """Why AWS would refuse the request."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def _timestamp(value: str) -> datetime:
    try:
        return datetime.strptime(value, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise Rejected(400, "IncompleteSignatureException", f"bad X-Amz-Date {value!r}") from None


def _scope(credential: str, secrets: Mapping[str, str], region: str, service: str, stamp: str) -> Credentials:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise Rejected(400, "IncompleteSignatureException", f"bad credential scope {credential!r}")
    access_key, day, scope_region, scope_service, _ = parts
    if access_key not in secrets:
        raise Rejected(
            403, "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    if day != stamp[:8] or scope_region != region or scope_service != service:
        raise Rejected(403, "InvalidSignatureException", f"Credential should be scoped to {region}/{service}")
    return Credentials(access_key, secrets[access_key])


def _check(signer: SigV4Auth, request: AWSRequest, claimed_headers: str, signature: str) -> None:
    canonical = signer.canonical_request(request)
    if signer.signed_headers(signer.headers_to_sign(request)) != claimed_headers:
        raise Rejected(403, "InvalidSignatureException", "SignedHeaders do not match the request")
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, signature):
        raise Rejected(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        )


def verify_signed_headers(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Mapping[str, str],
    region: str,
    service: str,
    required: tuple[str, ...] = (),
    now: datetime | None = None,
) -> str:
    """Verify an Authorization-header SigV4 request; returns the access key, or raises Rejected."""
    auth = headers.get("Authorization") or ""
    algorithm, _, rest = auth.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise Rejected(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    stamp = headers.get("X-Amz-Date") or ""
    credentials = _scope(fields.get("Credential", ""), secrets, region, service, stamp)
    skew = abs((now or datetime.now(UTC)) - _timestamp(stamp))
    if skew > MAX_SKEW:
        raise Rejected(403, "InvalidSignatureException", f"Signature expired: {stamp} is {skew} from now")
    signed = fields.get("SignedHeaders", "").split(";")
    for name in required:
        if name.lower() not in signed:
            raise Rejected(403, "InvalidSignatureException", f"{name} must be a signed header")
    present = {name: headers.get(name) for name in signed}
    if any(value is None for value in present.values()):
        raise Rejected(403, "InvalidSignatureException", "a signed header is missing from the request")
    request = AWSRequest(method=method, url=url, headers=present, data=body)
    request.context["timestamp"] = stamp
    _check(
        SigV4Auth(credentials, service, region),
        request,
        fields.get("SignedHeaders", ""),
        fields.get("Signature", ""),
    )
    return str(credentials.access_key)


def verify_presigned(
    method: str,
    url: str,
    headers: Mapping[str, str],
    *,
    secrets: Mapping[str, str],
    region: str,
    service: str,
    required_params: tuple[str, ...] = (),
    now: datetime | None = None,
) -> str:
    """Verify a query-string (presigned) SigV4 request; returns the access key, or raises Rejected."""
    base, _, query = url.partition("?")
    pairs = [pair.partition("=") for pair in query.split("&") if pair]
    params = {unquote(k): unquote(v) for k, _, v in pairs}
    stamp = params.get("X-Amz-Date", "")
    credentials = _scope(params.get("X-Amz-Credential", ""), secrets, region, service, stamp)
    try:
        expires = int(params.get("X-Amz-Expires", ""))
    except ValueError:
        raise Rejected(400, "IncompleteSignatureException", "X-Amz-Expires is required") from None
    if expires > MAX_PRESIGN_EXPIRES:
        raise Rejected(403, "AuthFailure", f"X-Amz-Expires must be at most {MAX_PRESIGN_EXPIRES}")
    signed_at = _timestamp(stamp)
    current = now or datetime.now(UTC)
    if current > signed_at + timedelta(seconds=expires) or signed_at - current > MAX_SKEW:
        raise Rejected(403, "AccessDeniedException", "Request has expired")
    for name in required_params:
        if name not in params:
            raise Rejected(403, "AccessDeniedException", f"{name} must be in the signed query")
    signed = params.get("X-Amz-SignedHeaders", "").split(";")
    present = {name: headers.get(name) for name in signed}
    if any(value is None for value in present.values()):
        raise Rejected(403, "InvalidSignatureException", "a signed header is missing from the request")
    unsigned_url = base + "?" + "&".join(f"{k}={v}" for k, _, v in pairs if k != "X-Amz-Signature")
    request = AWSRequest(method=method, url=unsigned_url, headers=present)
    request.context["timestamp"] = stamp
    signer = SigV4QueryAuth(credentials, service, region, expires=expires)
    _check(signer, request, params.get("X-Amz-SignedHeaders", ""), params.get("X-Amz-Signature", ""))
    return str(credentials.access_key)


@dataclass
class Tls:
    """A throwaway CA, its PEM file, and a server context for 127.0.0.1 signed by it."""

    ca_path: Path
    server: ssl.SSLContext


def isolate_aws_env(directory: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Only what a test sets reaches boto3: no machine config, no instance metadata, no ambient keys."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    config = directory / "aws-config"
    credentials = directory / "aws-credentials"
    config.write_text("")
    credentials.write_text("")
    env = {
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def use_keys(monkeypatch: pytest.MonkeyPatch, secret: str = SECRET_KEY) -> None:
    """The known access key in the environment, with ``secret``."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)


def make_tls(directory: Path) -> Tls:
    """A fresh CA (written to ``directory/ca.pem``) and a loopback server certificate."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server)
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return Tls(ca_path, server)


@dataclass
class Received:
    """One upgrade request as the stand-in got it."""

    path: str
    headers: list[tuple[str, str]]
    status: int = 0
    error: str = ""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive)."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class _PingCounter(logging.Handler):
    """Counts the RFC 6455 pings the stand-in receives (websockets logs each frame at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("< PING"):
            self.count += 1


@dataclass
class AwsStandIn:
    """The AgentCore data-plane endpoint, faked at the edge: TLS, SigV4, refusals; a real shell behind."""

    runtime_url: str
    tls: Tls
    region: str = "us-east-1"
    secrets: Mapping[str, str] = field(default_factory=lambda: {ACCESS_KEY: SECRET_KEY})
    received: list[Received] = field(default_factory=list)
    #: For each relayed connection: which side closed first ("client" or "runtime") and its close code.
    ended: list[tuple[str, int | None]] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: Server | None = None
    _pending: dict[int, ClientConnection] = field(default_factory=dict)
    _pings: _PingCounter = field(default_factory=_PingCounter)

    @property
    def url(self) -> str:
        """wss:// endpoint URL, for --endpoint-url."""
        return f"wss://127.0.0.1:{self.port}"

    @property
    def pings(self) -> int:
        """RFC 6455 pings received so far."""
        return self._pings.count

    def __enter__(self) -> AwsStandIn:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="aws-standin", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(START_TIMEOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(START_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT)
        self._loop.close()

    async def _start(self) -> None:
        logger = logging.getLogger(f"aws-standin.{uuid.uuid4().hex}")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(self._pings)
        self._server = await serve(
            self._relay,
            "127.0.0.1",
            0,
            ssl=self.tls.server,
            process_request=self._process_request,
            process_response=self._process_response,
            ping_interval=None,
            compression=None,
            logger=logger,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        for ws in self._pending.values():
            await ws.close()

    def _refuse(self, connection: ServerConnection, seen: Received, rejected: Rejected) -> Response:
        seen.status, seen.error = rejected.status, rejected.message
        body = json.dumps({"message": rejected.message})
        response = connection.respond(rejected.status, body)
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        response.headers["x-amzn-ErrorType"] = f"{rejected.error_type}:http://internal.amazon.com/coral/"
        return response

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        seen = Received(request.path, list(request.headers.raw_items()))
        self.received.append(seen)
        url = f"https://{request.headers.get('Host')}{request.path}"
        headers = {k: v for k, v in request.headers.raw_items()}
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            if "X-Amz-Signature=" in request.path:
                verify_presigned(
                    "GET",
                    url,
                    _Caseless(lowered),
                    secrets=self.secrets,
                    region=self.region,
                    service="bedrock-agentcore",
                    required_params=(SESSION_HEADER,),
                )
            else:
                verify_signed_headers(
                    "GET",
                    url,
                    _Caseless(lowered),
                    b"",
                    secrets=self.secrets,
                    region=self.region,
                    service="bedrock-agentcore",
                    required=("host", "x-amz-date", SESSION_HEADER),
                )
            try:
                shell = parse_target(request.path, request.headers)
            except ProtocolError as exc:
                raise Rejected(400, "ValidationException", str(exc)) from None
            if shell.shell_id == THROTTLE_SHELL_ID:
                raise Rejected(429, "ThrottlingException", "Rate exceeded")
            if shell.shell_id == QUOTA_SHELL_ID:
                raise Rejected(402, "ServiceQuotaExceededException", "Too many active shells")
        except Rejected as rejected:
            return self._refuse(connection, seen, rejected)
        # The shell behind the edge is a real runtime: same path, the session id in its header.
        try:
            upstream = await connect(
                self.runtime_url + shell.target(),
                additional_headers={SESSION_HEADER: shell.session_id or str(uuid.uuid4())},
                compression=None,
                ping_interval=None,
            )
        except InvalidStatus as exc:
            return self._refuse(
                connection, seen, Rejected(exc.response.status_code, "RuntimeClientError", "refused")
            )
        seen.status = 101
        self._pending[id(connection)] = upstream
        return None

    def _process_response(self, connection: ServerConnection, request: Request, response: Response) -> None:
        upstream = self._pending.get(id(connection))
        if upstream is not None and upstream.response is not None:
            for name in (SHELL_ID_HEADER, SESSION_HEADER):
                value = upstream.response.headers.get(name)
                if value:
                    response.headers[name] = value

    async def _relay(self, client: ServerConnection) -> None:
        upstream = self._pending.pop(id(client))
        to_runtime = asyncio.create_task(_pump(client, upstream))
        to_client = asyncio.create_task(_pump(upstream, client))
        done, _ = await asyncio.wait({to_runtime, to_client}, return_when=asyncio.FIRST_COMPLETED)
        source, target = (client, upstream) if to_runtime in done else (upstream, client)
        self.ended.append(("client" if source is client else "runtime", source.close_code))
        code = source.close_code if source.close_code not in (None, 1005, 1006) else 1000
        await target.close(code, source.close_reason or "")
        await asyncio.gather(to_runtime, to_client, return_exceptions=True)


class _Caseless(dict[str, str]):
    """Header lookup by any case (keys stored lower-case)."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


async def _pump(
    source: ServerConnection | ClientConnection, target: ServerConnection | ClientConnection
) -> None:
    try:
        async for message in source:
            await target.send(message)
    except ConnectionClosed:
        pass


_IDENTITY = """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>{arn}</Arn>
    <UserId>AIDARECORDERTEST</UserId>
    <Account>{account}</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>
"""
_ERROR = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>{request_id}</RequestId>
</ErrorResponse>
"""


class StsStandIn:
    """STS GetCallerIdentity over plain HTTP on loopback, SigV4-verified like the real one."""

    def __init__(self, region: str = "us-east-1", secrets: Mapping[str, str] | None = None) -> None:
        self.region = region
        self.secrets = dict(secrets or {ACCESS_KEY: SECRET_KEY})
        self.calls = 0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                standin.calls += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = f"http://{self.headers.get('Host')}{self.path}"
                request_id = str(uuid.uuid4())
                try:
                    verify_signed_headers(
                        "POST",
                        url,
                        _Caseless({k.lower(): v for k, v in self.headers.items()}),
                        body,
                        secrets=standin.secrets,
                        region=standin.region,
                        service="sts",
                        required=("host", "x-amz-date"),
                    )
                    if b"Action=GetCallerIdentity" not in body:
                        raise Rejected(400, "InvalidAction", "only GetCallerIdentity is served here")
                except Rejected as rejected:
                    code = "SignatureDoesNotMatch" if "signature" in rejected.message else rejected.error_type
                    self._answer(
                        rejected.status,
                        _ERROR.format(code=code, message=rejected.message, request_id=request_id),
                    )
                    return
                self._answer(200, _IDENTITY.format(arn=CALLER_ARN, account=ACCOUNT, request_id=request_id))

            def _answer(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sts-standin", daemon=True)

    @property
    def url(self) -> str:
        """http:// endpoint URL, for --sts-endpoint-url or AWS_ENDPOINT_URL_STS."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> StsStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(START_TIMEOUT)
