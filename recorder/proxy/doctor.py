"""``recorder doctor``: can this proxy open shells on AgentCore? Credentials, region, a real shell.

Each check gives one line; a failing one says what to do. The shell check opens a real shell on the
runtime, waits for its confirmation STATUS, then sends the CLOSE frame so no shell is left behind.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from websockets.exceptions import ConnectionClosed

from recorder.errors import ProtocolError, RecorderError
from recorder.logfmt import get_logger
from recorder.protocol import (
    Channel,
    CloseCode,
    Confirmation,
    RuntimeArn,
    ShellRequest,
    decode,
    encode,
    status,
)
from recorder.proxy.aws import (
    AgentCoreRefused,
    AgentCoreUpstream,
    AuthMode,
    aws_session,
    configured_ca_bundle,
    load_credentials,
    resolve_region,
)
from recorder.proxy.upstream import UpstreamRefused, UpstreamUnavailable

log = get_logger(__name__)

#: How long the shell may take to confirm (a new runtime session can start a microVM).
CONFIRM_TIMEOUT = 60.0
#: How long to wait for the upstream to close after the CLOSE frame.
CLOSE_TIMEOUT = 10.0
#: STS timeouts (seconds); one attempt, so a wrong endpoint fails fast.
STS_CONNECT_TIMEOUT = 5.0
STS_READ_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Check:
    """One check's verdict: ok True, failed False, or skipped (None) because an earlier one failed."""

    name: str
    ok: bool | None
    detail: str
    advice: str = ""

    def line(self) -> str:
        """One line for a terminal."""
        if self.ok:
            return f"ok    {self.name}: {self.detail}"
        if self.ok is None:
            return f"skip  {self.name}: {self.detail}"
        return f"FAIL  {self.name}: {self.detail}" + (f"; {self.advice}" if self.advice else "")


def all_passed(checks: list[Check]) -> bool:
    """True when every check passed (none failed or was skipped)."""
    return all(c.ok for c in checks)


def _caller_identity(session: Any, region: str, sts_endpoint_url: str | None, ca_bundle: str | None) -> Check:
    config = Config(
        connect_timeout=STS_CONNECT_TIMEOUT,
        read_timeout=STS_READ_TIMEOUT,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    try:
        # endpoint_url None lets botocore apply AWS_ENDPOINT_URL_STS and the profile's settings.
        sts = session.client(
            "sts", region_name=region, endpoint_url=sts_endpoint_url, verify=ca_bundle, config=config
        )
        identity = sts.get_caller_identity()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return Check(
            "credentials",
            False,
            f"STS rejected the credentials ({error.get('Code', '?')}: {error.get('Message', '')})",
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile's keys, and refresh an "
            "expired session (aws sso login)",
        )
    except BotoCoreError as exc:
        return Check(
            "credentials",
            False,
            f"cannot check the credentials with STS: {exc}",
            "check network access to STS, --sts-endpoint-url / AWS_ENDPOINT_URL_STS and --ca-bundle",
        )
    return Check("credentials", True, f"{identity.get('Arn')} (account {identity.get('Account')})")


async def _open_and_close(upstream: AgentCoreUpstream, request: ShellRequest) -> Check:
    name = "shell connection"
    try:
        opened = await upstream.open(request)
    except AgentCoreRefused as exc:
        detail = f"AgentCore refused the shell (HTTP {exc.aws_status} {exc.error_type}: {exc.aws_message})"
        if exc.status == 403:
            advice = (
                "grant the proxy's identity bedrock-agentcore:InvokeAgentRuntimeCommandShell on "
                f"{request.arn} and check its credentials"
            )
        elif exc.status == 429:
            advice = "the runtime has no capacity now; retry later or raise the quota"
        else:
            advice = "check the runtime ARN and qualifier"
        return Check(name, False, detail, advice)
    except UpstreamRefused as exc:
        return Check(name, False, exc.body.strip() or str(exc), "fix the request and retry")
    except UpstreamUnavailable as exc:
        return Check(name, False, str(exc), "check --endpoint-url, DNS, the network path and --ca-bundle")
    ws = opened.ws
    try:
        async with asyncio.timeout(CONFIRM_TIMEOUT):
            while True:
                message = await ws.recv()
                if not isinstance(message, bytes):
                    continue
                frame = decode(message)
                if frame.channel == Channel.STATUS and isinstance(status.parse(frame.payload), Confirmation):
                    break
    except TimeoutError:
        await ws.close(CloseCode.GOING_AWAY, "doctor gave up")
        return Check(
            name, False, f"no confirmation within {CONFIRM_TIMEOUT:.0f} s", "check the runtime's health"
        )
    except (ConnectionClosed, ProtocolError) as exc:
        await ws.close()
        return Check(
            name, False, f"the shell ended before its confirmation: {exc}", "check the runtime's logs"
        )
    # CLOSE ends the shell gracefully; the service then closes the connection with 1000.
    try:
        await ws.send(encode(Channel.CLOSE, b""))
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await ws.wait_closed()
    except (TimeoutError, ConnectionClosed):
        pass
    await ws.close()
    return Check(
        name,
        True,
        f"shell {opened.shell_id or request.shell_id} on session {opened.session_id} confirmed and closed",
    )


async def diagnose(
    runtime_arn: str,
    *,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    ca_bundle: str | None = None,
    sts_endpoint_url: str | None = None,
    auth: AuthMode = "sigv4",
    qualifier: str | None = None,
    session_id: str | None = None,
) -> list[Check]:
    """Check the runtime ARN, the credentials (STS), the region and a real shell connection."""
    checks: list[Check] = []
    try:
        arn = RuntimeArn.parse(runtime_arn)
    except ProtocolError as exc:
        return [Check("runtime ARN", False, str(exc), "pass the runtime's full ARN")]
    checks.append(Check("runtime ARN", True, str(arn)))
    try:
        session = await asyncio.to_thread(aws_session, profile)
        await asyncio.to_thread(load_credentials, session)
        resolved = resolve_region(session, region)
    except RecorderError as exc:
        checks.append(Check("credentials", False, str(exc), "configure credentials for the proxy's identity"))
        checks.append(Check("region", None, "not checked without credentials"))
        checks.append(Check("shell connection", None, "not tried without credentials"))
        return checks
    bundle = await asyncio.to_thread(configured_ca_bundle, ca_bundle, profile)
    checks.append(
        await asyncio.to_thread(_caller_identity, session, resolved or arn.region, sts_endpoint_url, bundle)
    )
    if not resolved:
        checks.append(
            Check(
                "region",
                False,
                "no region configured",
                f"pass --region {arn.region} or set AWS_REGION / AWS_DEFAULT_REGION",
            )
        )
    elif resolved != arn.region:
        checks.append(
            Check(
                "region",
                False,
                f"the proxy signs for {resolved} but the runtime is in {arn.region}",
                f"pass --region {arn.region}",
            )
        )
    else:
        checks.append(Check("region", True, resolved))
    if not checks[-1].ok:
        checks.append(Check("shell connection", None, "not tried until the region matches"))
        return checks
    try:
        upstream = AgentCoreUpstream(resolved, profile, endpoint_url, ca_bundle, auth)
        await upstream.start()
    except RecorderError as exc:
        checks.append(Check("shell connection", False, str(exc), "fix the setting named above"))
        return checks
    request = ShellRequest(
        arn=arn,
        qualifier=qualifier,
        shell_id=f"recorder-doctor-{uuid.uuid4().hex[:12]}",
        session_id=session_id or str(uuid.uuid4()),
    )
    try:
        checks.append(await _open_and_close(upstream, request))
    finally:
        await upstream.stop()
    return checks
