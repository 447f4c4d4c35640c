"""The AWS upstream: shells on real AgentCore runtimes, signed with the proxy's own AWS identity.

Engineers authenticate to the proxy; only the proxy's credentials (the standard boto3 chain:
environment, profile, SSO, container and instance roles) sign the upstream request, with SigV4 in
the headers or in a presigned URL, as the public SDK's ``connect_shell`` and
``connect_shell_presigned`` do. Nothing the client sent (its Authorization header, its bearer
subprotocol) goes upstream: the upstream sees only the request this module builds.
"""

from __future__ import annotations

import asyncio
import http
import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlencode, urlsplit

import boto3
import botocore.session
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError
from websockets.asyncio.client import connect
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from recorder.errors import AwsCredentialsError, ConfigError, PresignExpiryTooLong, ProtocolError
from recorder.logfmt import get_logger
from recorder.protocol import (
    MAX_MESSAGE_SIZE,
    SESSION_HEADER,
    SHELL_ID_HEADER,
    ShellRequest,
    new_session_id,
    validate_qualifier,
    validate_session_id,
    validate_shell_id,
)
from recorder.proxy.hop import HopClientConnection
from recorder.proxy.upstream import (
    DEFAULT_OPEN_TIMEOUT,
    DEFAULT_PING_INTERVAL,
    OpenUpstream,
    UpstreamRefused,
    UpstreamUnavailable,
)

log = get_logger(__name__)

#: The SigV4 service name of the AgentCore data plane.
SERVICE = "bedrock-agentcore"
AuthMode = Literal["sigv4", "presigned"]
AUTH_MODES: tuple[AuthMode, ...] = ("sigv4", "presigned")
#: The service refuses presigned URLs that live longer than this (seconds).
MAX_PRESIGN_EXPIRES = 300
DEFAULT_PRESIGN_EXPIRES = 300
#: A pong must come back within this many seconds, or the upstream connection is closed as dead.
PING_TIMEOUT = 20.0
#: How much of AWS's error message is kept for the log and the client.
MAX_AWS_MESSAGE = 500

#: AWS statuses that mean "not now" (throttling, quota, capacity): the client gets 429 and may retry.
_CAPACITY = frozenset({402, 429, 503})
#: AWS statuses that describe the client's own request and pass through unchanged.
_PASS_THROUGH = frozenset({400, 404, 409, 424})


class AgentCoreRefused(UpstreamRefused):
    """AgentCore answered the upgrade with an error; ``status`` is what the client gets."""

    def __init__(self, status: int, body: str, *, aws_status: int, error_type: str, aws_message: str) -> None:
        super().__init__(status, body)
        self.aws_status = aws_status
        self.error_type = error_type
        self.aws_message = aws_message


def client_status(aws_status: int) -> int:
    """The HTTP status a client gets for an AWS refusal of the shell upgrade."""
    if aws_status in (401, 403):
        return 403
    if aws_status in _CAPACITY:
        return 429
    if aws_status in _PASS_THROUGH:
        return aws_status
    return 502


def parse_aws_error(headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """(error type, message) from an AWS error response; either may be empty."""
    error_type = headers.get("x-amzn-ErrorType", "").split(":", 1)[0]
    text = body.decode("utf-8", "replace")
    message = text.strip()
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        found = document.get("message") or document.get("Message")
        message = str(found) if found is not None else message
        if not error_type and isinstance(document.get("__type"), str):
            error_type = document["__type"].rsplit("#", 1)[-1]
    return error_type, " ".join(message.split())[:MAX_AWS_MESSAGE]


def endpoint_base(endpoint_url: str) -> str:
    """``wss://host[:port]`` from an https:// or wss:// endpoint URL (a VPC endpoint, say)."""
    parts = urlsplit(endpoint_url)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"bad port in endpoint URL {endpoint_url!r}") from None
    if parts.scheme not in ("https", "wss") or not parts.hostname:
        raise ConfigError(
            f"endpoint URL must be https://HOST[:PORT] or wss://HOST[:PORT], got {endpoint_url!r}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"endpoint URL takes a scheme, host and port only, got {endpoint_url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"wss://{host}:{port}" if port is not None else f"wss://{host}"


def _https(url: str) -> str:
    return "https://" + url.removeprefix("wss://")


def sign_headers(credentials: Any, region: str, url: str, session_id: str) -> dict[str, str]:
    """SigV4 headers for opening wss:// ``url``, the session-id header among the signed headers."""
    # botocore signs the Host it derives from the URL (port kept unless default), which is exactly
    # the Host header websockets sends for the wss:// URL.
    request = AWSRequest(method="GET", url=_https(url), headers={SESSION_HEADER: session_id})
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    headers = {
        SESSION_HEADER: session_id,
        "X-Amz-Date": request.headers["X-Amz-Date"],
        "Authorization": request.headers["Authorization"],
    }
    token = request.headers.get("X-Amz-Security-Token")
    if token:
        headers["X-Amz-Security-Token"] = token
    return headers


def presign_url(credentials: Any, region: str, url: str, session_id: str, expires: int) -> str:
    """A presigned wss:// URL; the session id rides in the query, covered by the signature."""
    check_presign_expires(expires)
    https_url = _https(url)
    https_url += ("&" if "?" in https_url else "?") + urlencode({SESSION_HEADER: session_id})
    request = AWSRequest(method="GET", url=https_url)
    SigV4QueryAuth(credentials, SERVICE, region, expires=expires).add_auth(request)
    return "wss://" + cast(str, request.url).removeprefix("https://")


def check_presign_expires(expires: int) -> int:
    """Return ``expires`` when it is 1 to MAX_PRESIGN_EXPIRES seconds."""
    if expires > MAX_PRESIGN_EXPIRES:
        raise PresignExpiryTooLong(expires, MAX_PRESIGN_EXPIRES)
    if expires < 1:
        raise ConfigError(f"presigned URL expiry must be at least 1 s, got {expires}")
    return expires


def aws_session(profile: str | None) -> Any:
    """A boto3 session on the standard credential chain (``profile`` or the default one)."""
    core = botocore.session.Session(profile=profile)
    if profile is not None and profile not in core.available_profiles:
        raise ConfigError(
            f"AWS profile {profile!r} not found; check --profile, AWS_CONFIG_FILE and "
            "AWS_SHARED_CREDENTIALS_FILE"
        )
    return boto3.Session(botocore_session=core)


def resolve_region(session: Any, explicit: str | None) -> str | None:
    """The option, else the profile's or AWS_DEFAULT_REGION (botocore), else AWS_REGION."""
    # botocore reads AWS_DEFAULT_REGION and the profile; AWS_REGION is what the other SDKs and the
    # AWS CLI v2 read, so it is honoured too.
    return explicit or session.region_name or os.environ.get("AWS_REGION") or None


def load_credentials(session: Any) -> Any:
    """The session's refreshable credentials; AwsCredentialsError when the chain finds none."""
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise AwsCredentialsError(f"cannot load AWS credentials: {exc}") from None
    if credentials is None:
        raise AwsCredentialsError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass --profile, "
            "or run where a role is available"
        )
    return credentials


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verification against ``ca_bundle`` (only), or the system's trust store when None."""
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load CA bundle {ca_bundle}: {exc}") from None


def configured_ca_bundle(explicit: str | None, profile: str | None) -> str | None:
    """The option, else AWS_CA_BUNDLE or the profile's ca_bundle (as botocore resolves them)."""
    if explicit:
        return explicit
    return botocore.session.Session(profile=profile).get_config_variable("ca_bundle") or None


@dataclass(frozen=True, slots=True)
class _Loaded:
    credentials: Any
    region: str
    base_url: str
    ssl_context: ssl.SSLContext


class AgentCoreUpstream:
    """AWS Bedrock AgentCore: InvokeAgentRuntimeCommandShell, signed with the proxy's credentials."""

    name = "agentcore"

    def __init__(
        self,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        ca_bundle: str | None = None,
        auth: AuthMode = "sigv4",
        presign_expires: int = DEFAULT_PRESIGN_EXPIRES,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
        *,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
    ) -> None:
        if auth not in AUTH_MODES:
            raise ConfigError(f"upstream auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        if ping_interval is not None and ping_interval < 0:
            raise ConfigError(
                f"upstream ping interval must be positive (0 turns pings off), got {ping_interval}"
            )
        self._region = region
        self._profile = profile
        self._base = endpoint_base(endpoint_url) if endpoint_url else None
        self._ca_bundle = ca_bundle
        self.auth: AuthMode = auth
        self.presign_expires = check_presign_expires(presign_expires)
        self.ping_interval = ping_interval or None
        self._open_timeout = open_timeout
        self._loaded: _Loaded | None = None

    @property
    def region(self) -> str | None:
        """The region requests are signed for (known after load())."""
        return self._loaded.region if self._loaded else self._region

    @property
    def base_url(self) -> str | None:
        """``wss://host[:port]`` of the endpoint (known after load())."""
        return self._loaded.base_url if self._loaded else self._base

    def load(self) -> None:
        """Resolve credentials, region, endpoint and TLS trust; blocking (files, SSO, IMDS)."""
        if self._loaded is not None:
            return
        session = aws_session(self._profile)
        credentials = load_credentials(session)
        region = resolve_region(session, self._region)
        if not region:
            raise ConfigError(
                "no AWS region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION or the profile's region"
            )
        base = self._base
        if base is None:
            try:
                # botocore's endpoint rules: partition DNS suffix, AWS_ENDPOINT_URL_BEDROCK_AGENTCORE, FIPS.
                base = endpoint_base(session.client(SERVICE, region_name=region).meta.endpoint_url)
            except BotoCoreError as exc:
                raise ConfigError(f"cannot resolve the AgentCore endpoint for {region}: {exc}") from None
        ssl_context = tls_context(configured_ca_bundle(self._ca_bundle, self._profile))
        self._loaded = _Loaded(credentials, region, base, ssl_context)
        log.info(
            "upstream.agentcore.ready",
            region=region,
            endpoint=base,
            auth=self.auth,
            credentials=getattr(credentials, "method", None) or "-",
        )

    async def start(self) -> None:
        """Load credentials and settings off the event loop."""
        await asyncio.to_thread(self.load)

    async def stop(self) -> None:
        """Nothing to release: connections belong to their relays."""

    def _signed(self, loaded: _Loaded, url: str, session_id: str) -> tuple[str, dict[str, str]]:
        # Frozen per connection, so expiring credentials (roles, SSO) are refreshed by botocore.
        frozen = loaded.credentials.get_frozen_credentials()
        if self.auth == "presigned":
            return presign_url(frozen, loaded.region, url, session_id, self.presign_expires), {}
        return url, sign_headers(frozen, loaded.region, url, session_id)

    async def open(self, request: ShellRequest) -> OpenUpstream:
        """Open the shell on AgentCore; refusals carry the status the client should get."""
        loaded = self._loaded
        if loaded is None:
            raise UpstreamUnavailable("the AgentCore upstream is not started")
        if request.arn.region != loaded.region:
            raise UpstreamRefused(
                400,
                f"the runtime ARN is in region {request.arn.region} but this proxy signs for "
                f"{loaded.region}; use a proxy started with --region {request.arn.region}\n",
            )
        session_id = request.session_id or new_session_id()
        try:
            if request.qualifier is not None:
                validate_qualifier(request.qualifier)
            if request.shell_id is not None:
                validate_shell_id(request.shell_id)
            validate_session_id(session_id)
        except ProtocolError as exc:
            raise UpstreamRefused(400, f"{exc}\n") from None
        try:
            url, headers = await asyncio.to_thread(
                self._signed, loaded, loaded.base_url + request.target(), session_id
            )
        except BotoCoreError as exc:
            raise UpstreamUnavailable(f"cannot sign with the proxy's AWS credentials: {exc}") from None
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                max_size=MAX_MESSAGE_SIZE,
                create_connection=HopClientConnection,
                open_timeout=self._open_timeout,
                ping_interval=self.ping_interval,
                ping_timeout=PING_TIMEOUT,
                compression=None,
                ssl=loaded.ssl_context,
            )
        except InvalidStatus as exc:
            raise _refusal(
                exc.response.status_code, exc.response.headers, exc.response.body, request
            ) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ssl.SSLError) as exc:
            why = str(exc) or type(exc).__name__
            raise UpstreamUnavailable(f"cannot reach AgentCore at {loaded.base_url}: {why}") from None
        response = ws.response
        assert response is not None
        log.info(
            "upstream.agentcore.opened",
            runtime_arn=str(request.arn),
            shell_id=request.shell_id,
            session_id=session_id,
            auth=self.auth,
        )
        return OpenUpstream(
            ws=ws,
            shell_id=response.headers.get(SHELL_ID_HEADER),
            session_id=response.headers.get(SESSION_HEADER) or session_id,
        )


def _refusal(
    aws_status: int, headers: Headers, body: bytes | None, request: ShellRequest
) -> AgentCoreRefused:
    error_type, message = parse_aws_error(headers, body or b"")
    status = client_status(aws_status)
    # AWS's message goes to the proxy log; a 403's message can name the proxy's role and policy, so
    # the client only gets the error type for those.
    log.warning(
        "upstream.agentcore.refused",
        aws_status=aws_status,
        client_status=status,
        error_type=error_type or "-",
        message=message or "-",
        runtime_arn=str(request.arn),
        shell_id=request.shell_id,
    )
    what = f"HTTP {aws_status}" + (f" {error_type}" if error_type else "")
    if status == 403:
        text = f"AgentCore denied the proxy's request ({what}); the proxy log has AWS's message"
    elif status == 429:
        text = f"AgentCore has no capacity for this shell now ({what}); retry later"
    elif status == 502:
        text = f"AgentCore failed to open the shell ({what})"
    else:
        text = f"AgentCore refused the shell ({what}): {message or http.HTTPStatus(status).phrase}"
    return AgentCoreRefused(
        status, text + "\n", aws_status=aws_status, error_type=error_type, aws_message=message
    )
