"""The AgentCore upstream end to end: a real proxy process signing with boto3 credentials, a TLS
stand-in of the AWS endpoint on loopback that verifies SigV4 with botocore, a real runtime behind it."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus

from recorder.cast.reader import open_cast
from recorder.errors import ConfigError, PresignExpiryTooLong
from recorder.protocol import (
    SESSION_HEADER,
    Channel,
    RuntimeArn,
    ShellRequest,
    decode,
    encode,
    status,
)
from recorder.proxy.aws import (
    MAX_PRESIGN_EXPIRES,
    AgentCoreUpstream,
    check_presign_expires,
    client_status,
    endpoint_base,
    parse_aws_error,
    presign_url,
    sign_headers,
)
from recorder.proxy.upstream import UpstreamRefused, UpstreamUnavailable
from tests.procs import TEST_ARN, RunningProcess, run_recorder, start_runtime, until
from tests.proxy.aws_standin import (
    ACCESS_KEY,
    QUOTA_SHELL_ID,
    SECRET_KEY,
    THROTTLE_SHELL_ID,
    AwsStandIn,
    Tls,
    isolate_aws_env,
    make_tls,
    use_keys,
)
from tests.proxy.conftest import Stack, stack

pytestmark = pytest.mark.timeout(60)

CLIENT_TOKEN = "client-secret-token-must-not-travel"
#: Safety net for one client exchange (never asserted as a duration).
EXCHANGE_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def runtime() -> Iterator[RunningProcess]:
    """One real runtime behind the stand-in for the whole module (plain sh: quick to start)."""
    with start_runtime("--shell", "sh") as proc:
        yield proc


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def aws(runtime: RunningProcess, tls: Tls) -> Iterator[AwsStandIn]:
    with AwsStandIn(runtime.url, tls) as standin:
        yield standin


@pytest.fixture(autouse=True)
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return isolate_aws_env(tmp_path, monkeypatch)


@contextmanager
def agentcore_proxy(
    tmp_path: Path, aws: AwsStandIn, *extra: str, ca: bool = True, region: bool = True
) -> Iterator[Stack]:
    args = ["--endpoint-url", aws.url, *extra]
    if region:
        args += ["--region", "us-east-1"]
    if ca:
        args += ["--ca-bundle", str(aws.tls.ca_path)]
    with stack(tmp_path, *args, upstream="agentcore") as s:
        yield s


def _request(arn: str = TEST_ARN, shell_id: str | None = None) -> ShellRequest:
    return ShellRequest(
        RuntimeArn.parse(arn), None, shell_id or f"sh-{uuid.uuid4().hex[:12]}", str(uuid.uuid4())
    )


@asynccontextmanager
async def client(
    base: str, req: ShellRequest, *, credentials: bool = False
) -> AsyncIterator[ClientConnection]:
    """A client of the proxy; with ``credentials``, it also offers a bearer token both ways."""
    headers = {SESSION_HEADER: req.session_id or ""}
    subprotocols = None
    if credentials:
        headers["Authorization"] = f"Bearer {CLIENT_TOKEN}"
        encoded = base64.urlsafe_b64encode(CLIENT_TOKEN.encode()).decode().rstrip("=")
        subprotocols = [f"base64UrlBearerAuthorization.{encoded}", "base64UrlBearerAuthorization"]
    async with connect(
        base + req.target(),
        additional_headers=headers,
        subprotocols=subprotocols,  # type: ignore[arg-type]
        open_timeout=EXCHANGE_TIMEOUT,
    ) as ws:
        yield ws


async def run_shell(
    base: str, req: ShellRequest, line: bytes, *, credentials: bool = False
) -> tuple[str, bytes]:
    """Type ``line`` into a fresh shell; (all STDOUT, last STATUS) once the shell ends."""
    out = bytearray()
    last = b""
    async with asyncio.timeout(EXCHANGE_TIMEOUT), client(base, req, credentials=credentials) as ws:
        await ws.send(encode(Channel.STDIN, line))
        try:
            async for message in ws:
                assert isinstance(message, bytes)
                frame = decode(message)
                if frame.channel == Channel.STDOUT:
                    out += frame.payload
                elif frame.channel == Channel.STATUS:
                    last = frame.payload
        except ConnectionClosed:
            pass
    return out.decode("utf-8", "replace"), last


async def refused(base: str, req: ShellRequest) -> tuple[int, str]:
    """(status, body) of a refused upgrade."""
    async with asyncio.timeout(EXCHANGE_TIMEOUT):
        with pytest.raises(InvalidStatus) as info:
            async with client(base, req):
                pass
    response = info.value.response
    return response.status_code, (response.body or b"").decode()


def recorded_output(s: Stack, conn_index: int = 0) -> str:
    row = s.finished()[conn_index]
    with open_cast(s.cast_path(row)) as reader:
        return "".join(e.data for e in reader.events() if e.code == "o")


# -- end to end through the proxy -----------------------------------------------------------


async def test_sigv4_shell_is_recorded_and_only_the_proxy_identity_reaches_aws(
    tmp_path: Path, aws: AwsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch)
    req = _request()
    with agentcore_proxy(tmp_path, aws) as s:
        out, last = await run_shell(s.url, req, b"echo via-aws-$((6*7)); exit 3\r", credentials=True)
        assert "via-aws-42" in out
        assert status.parse(last) == status.Termination(
            exit_code=3, message="command terminated with exit code 3"
        )
        (row,) = s.finished()
        assert row.upstream == "agentcore" and row.exit_code == 3 and row.end_reason == "exit"
        assert row.shell_id == req.shell_id and row.session_id == req.session_id
        assert "via-aws-42" in recorded_output(s)
    (seen,) = aws.received
    assert seen.status == 101
    assert (seen.header("Authorization") or "").startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert seen.header(SESSION_HEADER) == req.session_id
    assert f"shellId={req.shell_id}" in seen.path
    # The client's token went neither as a header nor as a subprotocol.
    assert seen.header("Sec-WebSocket-Protocol") is None
    assert not any(CLIENT_TOKEN in value or "Bearer" in value for _, value in seen.headers)
    assert not any(
        base64.urlsafe_b64encode(CLIENT_TOKEN.encode()).decode().rstrip("=") in v for _, v in seen.headers
    )


async def test_wrong_secret_is_refused_with_403_and_aws_message_is_logged(
    tmp_path: Path, aws: AwsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch, secret="not-the-" + SECRET_KEY)
    with agentcore_proxy(tmp_path, aws) as s:
        code, body = await refused(s.url, _request())
        assert code == 403 and "InvalidSignatureException" in body
        assert "does not match the signature" not in body  # AWS's words stay in the proxy log
        (refusal,) = s.index.list_refusals()
        assert refusal.http_status == 403 and refusal.runtime_arn == TEST_ARN
        assert s.index.list_connections() == []
        await until(lambda: "does not match the signature" in s.proxy.text, 20, "AWS's message in the log")
    assert [r.status for r in aws.received] == [403]


async def test_presigned_mode_signs_the_query_and_records(
    tmp_path: Path, aws: AwsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch)
    # Trust comes from AWS_CA_BUNDLE here, as botocore would take it.
    monkeypatch.setenv("AWS_CA_BUNDLE", str(aws.tls.ca_path))
    req = _request()
    args = ("--upstream-auth", "presigned", "--presign-expires", "120")
    with agentcore_proxy(tmp_path, aws, *args, ca=False) as s:
        out, last = await run_shell(s.url, req, b"echo presigned-ok; exit 0\r", credentials=True)
        assert "presigned-ok" in out and status.parse(last) == status.Termination(exit_code=0)
        (row,) = s.finished()
        assert row.upstream == "agentcore" and row.exit_code == 0
    (seen,) = aws.received
    assert seen.status == 101
    assert "X-Amz-Signature=" in seen.path and "X-Amz-Expires=120" in seen.path
    assert f"{SESSION_HEADER}={req.session_id}" in seen.path
    assert seen.header("Authorization") is None and seen.header(SESSION_HEADER) is None


async def test_profile_credentials_and_region_sign(
    tmp_path: Path, aws: AwsStandIn, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        f"[recorder-test]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    Path(aws_env["AWS_CONFIG_FILE"]).write_text("[profile recorder-test]\nregion = us-east-1\n")
    with agentcore_proxy(tmp_path, aws, "--profile", "recorder-test", region=False) as s:
        out, _ = await run_shell(s.url, _request(), b"echo profile-ok; exit 0\r")
        assert "profile-ok" in out
        assert s.finished()[0].exit_code == 0
    assert [r.status for r in aws.received] == [101]


async def test_region_mismatch_is_400_and_nothing_goes_upstream(
    tmp_path: Path, aws: AwsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch)
    west = TEST_ARN.replace("us-east-1", "us-west-2")
    with agentcore_proxy(tmp_path, aws) as s:
        code, body = await refused(s.url, _request(west))
        assert code == 400
        assert "us-west-2" in body and "us-east-1" in body and "--region us-west-2" in body
        assert [r.http_status for r in s.index.list_refusals()] == [400]
    assert aws.received == []


async def test_untrusted_certificate_is_502(
    tmp_path: Path, aws: AwsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch)
    with agentcore_proxy(tmp_path, aws, ca=False) as s:
        code, _ = await refused(s.url, _request())
        assert code == 502
        (refusal,) = s.index.list_refusals()
        assert refusal.http_status == 502 and "CERTIFICATE_VERIFY_FAILED" in refusal.reason
    assert aws.received == []


async def test_throttling_and_quota_refusals_become_429(
    tmp_path: Path, aws: AwsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch)
    with agentcore_proxy(tmp_path, aws) as s:
        throttled = await refused(s.url, _request(shell_id=THROTTLE_SHELL_ID))
        quota = await refused(s.url, _request(shell_id=QUOTA_SHELL_ID))
        assert throttled[0] == 429 and "ThrottlingException" in throttled[1]
        assert quota[0] == 429 and "ServiceQuotaExceededException" in quota[1]
        assert sorted(r.http_status for r in s.index.list_refusals()) == [429, 429]
    assert sorted(r.status for r in aws.received) == [402, 429]


async def test_upstream_is_pinged_at_the_configured_interval(
    tmp_path: Path, aws: AwsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch)
    with agentcore_proxy(tmp_path, aws, "--upstream-ping-interval", "0.2") as s:
        async with asyncio.timeout(EXCHANGE_TIMEOUT), client(s.url, _request()) as ws:
            await until(lambda: aws.pings >= 3, 20, "three pings from the proxy")
            await ws.send(encode(Channel.STDIN, b"exit 0\r"))
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
        assert s.finished()[0].exit_code == 0


async def test_expiring_credentials_are_refreshed_for_each_connection(
    tmp_path: Path, aws: AwsStandIn, aws_env: dict[str, str]
) -> None:
    # credential_process credentials that expire in 5 minutes: botocore must refresh them whenever
    # they are frozen, so the process runs once at start and once per connection.
    counter = tmp_path / "calls"
    counter.write_text("0")
    script = tmp_path / "creds.py"
    script.write_text(
        "import datetime, json, pathlib, sys\n"
        "p = pathlib.Path(sys.argv[1]); p.write_text(str(int(p.read_text()) + 1))\n"
        "end = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)\n"
        f"print(json.dumps({{'Version': 1, 'AccessKeyId': '{ACCESS_KEY}', 'SecretAccessKey': '{SECRET_KEY}', "
        "'Expiration': end.strftime('%Y-%m-%dT%H:%M:%SZ')}))\n"
    )
    Path(aws_env["AWS_CONFIG_FILE"]).write_text(
        f"[profile recorder-proc]\ncredential_process = {sys.executable} {script} {counter}\n"
    )
    with agentcore_proxy(tmp_path, aws, "--profile", "recorder-proc") as s:
        at_start = int(counter.read_text())
        for expected in (1, 2):
            out, _ = await run_shell(s.url, _request(), b"echo refreshed; exit 0\r")
            assert "refreshed" in out
            assert int(counter.read_text()) == at_start + expected
    assert at_start == 1 and [r.status for r in aws.received] == [101, 101]


async def test_silent_and_closed_endpoints_are_unavailable(tls: Tls, monkeypatch: pytest.MonkeyPatch) -> None:
    use_keys(monkeypatch)
    held: list[asyncio.StreamWriter] = []

    def accept_and_say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        for port in (silent.sockets[0].getsockname()[1], closed_port):
            upstream = AgentCoreUpstream(
                "us-east-1", None, f"wss://127.0.0.1:{port}", str(tls.ca_path), open_timeout=0.5
            )
            await upstream.start()
            with pytest.raises(UpstreamUnavailable, match="cannot reach AgentCore"):
                await upstream.open(_request())
    finally:
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()


async def test_invalid_ids_are_refused_before_anything_is_sent(
    aws: AwsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch)
    upstream = AgentCoreUpstream("us-east-1", None, aws.url, str(aws.tls.ca_path))
    await upstream.start()
    arn = RuntimeArn.parse(TEST_ARN)
    bad = [
        ShellRequest(arn, None, "no spaces allowed", str(uuid.uuid4())),
        ShellRequest(arn, "bad qualifier!", "fine", str(uuid.uuid4())),
        ShellRequest(arn, None, "fine", "spaces in session"),
    ]
    for req in bad:
        with pytest.raises(UpstreamRefused) as info:
            await upstream.open(req)
        assert info.value.status == 400
    assert aws.received == []


def test_missing_region_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_keys(monkeypatch)
    result = run_recorder(
        "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"), "--upstream", "agentcore"
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "recorder: error: no AWS region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION or the "
        "profile's region"
    ]


def test_missing_credentials_and_bad_settings_are_one_line_errors(tmp_path: Path) -> None:
    base = ["serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"), "--upstream"]
    cases = {
        ("agentcore", "--region", "us-east-1"): "no AWS credentials found",
        ("agentcore", "--region", "us-east-1", "--profile", "nope"): "AWS profile 'nope' not found",
        ("agentcore", "--region", "us-east-1", "--presign-expires", "301"): "exceeds the 300 s maximum",
        ("agentcore", "--region", "us-east-1", "--endpoint-url", "http://h"): "endpoint URL must be https://",
        ("agentcore", "--region", "us-east-1", "--upstream-auth", "basic"): "must be one of sigv4, presigned",
        ("local", "--region", "us-east-1"): "only --upstream agentcore takes --region",
    }
    for extra, message in cases.items():
        result = run_recorder(*base, *extra)
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1 and message in lines[0], (extra, result.stderr)


# -- the signing functions against the stand-in directly ------------------------------------


def _standin_request(aws: AwsStandIn, req: ShellRequest) -> str:
    return aws.url + req.target()


async def _status_of(url: str, tls: Tls, headers: dict[str, str] | Headers | None = None) -> int:
    context = ssl.create_default_context(cafile=str(tls.ca_path))
    async with asyncio.timeout(EXCHANGE_TIMEOUT):
        try:
            async with connect(url, additional_headers=headers, ssl=context) as ws:
                await ws.send(encode(Channel.CLOSE, b""))
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code


def _frozen(secret: str = SECRET_KEY) -> Credentials:
    return Credentials(ACCESS_KEY, secret).get_frozen_credentials()


def _clock(monkeypatch: pytest.MonkeyPatch, shift: timedelta) -> None:
    """Move the signer's clock (botocore's), not the stand-in's."""
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda: datetime.now(UTC).replace(tzinfo=None) + shift
    )


async def test_standin_accepts_the_product_signature_and_rejects_tampering(
    aws: AwsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = _request()
    url = _standin_request(aws, req)
    assert req.session_id is not None
    good = sign_headers(_frozen(), "us-east-1", url, req.session_id)
    assert await _status_of(url, aws.tls, good) == 101
    # A changed signed header (another runtime session) breaks the signature.
    assert await _status_of(url, aws.tls, {**good, SESSION_HEADER: str(uuid.uuid4())}) == 403
    # So does a wrong secret, and a signature for another region.
    assert (
        await _status_of(url, aws.tls, sign_headers(_frozen("wrong"), "us-east-1", url, req.session_id))
        == 403
    )
    assert await _status_of(url, aws.tls, sign_headers(_frozen(), "eu-west-1", url, req.session_id)) == 403
    # A session-id header left out of SignedHeaders is refused even when the rest verifies.
    unsigned = AWSRequest(method="GET", url="https://" + url.removeprefix("wss://"))
    SigV4Auth(_frozen(), "bedrock-agentcore", "us-east-1").add_auth(unsigned)
    loose = {k: unsigned.headers[k] for k in ("X-Amz-Date", "Authorization")}
    assert await _status_of(url, aws.tls, {**loose, SESSION_HEADER: req.session_id}) == 403
    # A date more than five minutes off.
    _clock(monkeypatch, -timedelta(minutes=6))
    stale = sign_headers(_frozen(), "us-east-1", url, req.session_id)
    assert await _status_of(url, aws.tls, stale) == 403
    assert [r.status for r in aws.received] == [101, 403, 403, 403, 403, 403]
    assert "Signature expired" in aws.received[-1].error


async def test_standin_enforces_presigned_expiry(aws: AwsStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    req = _request()
    assert req.session_id is not None
    url = _standin_request(aws, req)
    fresh = presign_url(_frozen(), "us-east-1", url, req.session_id, expires=60)
    assert await _status_of(fresh, aws.tls) == 101
    assert await _status_of(fresh.replace("shellId=", "shellId=x"), aws.tls) == 403
    _clock(monkeypatch, -timedelta(seconds=61))
    expired = presign_url(_frozen(), "us-east-1", url, req.session_id, expires=60)
    assert await _status_of(expired, aws.tls) == 403
    assert aws.received[-1].error == "Request has expired"


# -- pure parts -------------------------------------------------------------------------------------


def test_aws_statuses_map_to_client_statuses() -> None:
    assert [client_status(s) for s in (401, 403, 402, 429, 503, 400, 404, 409, 424, 500, 418)] == [
        403,
        403,
        429,
        429,
        429,
        400,
        404,
        409,
        424,
        502,
        502,
    ]


def test_aws_error_type_and_message_are_read_from_header_or_body() -> None:
    headers = {"x-amzn-ErrorType": "AccessDeniedException:http://internal.amazon.com/coral/"}
    assert parse_aws_error(headers, b'{"message": "User: x is not  authorized"}') == (
        "AccessDeniedException",
        "User: x is not authorized",
    )
    assert parse_aws_error({}, b'{"__type": "com.amazon#ThrottlingException", "Message": "slow"}') == (
        "ThrottlingException",
        "slow",
    )
    assert parse_aws_error({}, b"<html>gateway</html>") == ("", "<html>gateway</html>")


def test_endpoint_url_keeps_scheme_host_and_port_only() -> None:
    assert endpoint_base("https://vpce-1.bedrock-agentcore.us-east-1.vpce.amazonaws.com") == (
        "wss://vpce-1.bedrock-agentcore.us-east-1.vpce.amazonaws.com"
    )
    assert endpoint_base("wss://127.0.0.1:8443/") == "wss://127.0.0.1:8443"
    for bad in (
        "http://h",
        "ws://h",
        "https://h/prefix",
        "https://h?x=1",
        "https://u:p@h",
        "https://h:99999",
    ):
        with pytest.raises(ConfigError):
            endpoint_base(bad)


def test_presign_expiry_is_limited_to_300_seconds() -> None:
    assert check_presign_expires(MAX_PRESIGN_EXPIRES) == 300
    with pytest.raises(PresignExpiryTooLong) as info:
        check_presign_expires(MAX_PRESIGN_EXPIRES + 1)
    assert info.value.limit == 300
    with pytest.raises(ConfigError):
        check_presign_expires(0)
    with pytest.raises(PresignExpiryTooLong):
        presign_url(_frozen(), "us-east-1", "wss://h/runtimes/x/ws/shells", "s", expires=301)
