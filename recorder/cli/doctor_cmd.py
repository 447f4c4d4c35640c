"""``recorder doctor``: check that the proxy can open shells on its upstream."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from recorder import logfmt
from recorder.cli.common import fail
from recorder.proxy.aws import AUTH_MODES
from recorder.proxy.doctor import all_passed, diagnose


def doctor(
    runtime_arn: Annotated[str, typer.Option(help="The runtime to open a test shell on.")],
    upstream: Annotated[str, typer.Option(help="The upstream to check: 'agentcore'.")] = "agentcore",
    region: Annotated[
        str | None, typer.Option(help="AWS region (default: the profile's or the env's).")
    ] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile whose credentials sign.")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="https:// or wss:// AgentCore endpoint (a VPC endpoint, say).")
    ] = None,
    ca_bundle: Annotated[
        str | None, typer.Option(help="CA bundle to verify TLS (default: AWS_CA_BUNDLE).")
    ] = None,
    sts_endpoint_url: Annotated[
        str | None,
        typer.Option(help="STS endpoint for the credentials check (default: AWS_ENDPOINT_URL_STS)."),
    ] = None,
    upstream_auth: Annotated[
        str, typer.Option(help="'sigv4' or 'presigned', as recorder serve uses.")
    ] = "sigv4",
    qualifier: Annotated[str | None, typer.Option(help="Endpoint qualifier (default: DEFAULT).")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "ERROR",
) -> None:
    """Check credentials, region and a real shell connection; one line per check, non-zero on a problem."""
    logfmt.configure(log_level)
    if upstream != "agentcore":
        raise fail(f"doctor checks --upstream agentcore only, got {upstream!r}")
    if upstream_auth not in AUTH_MODES:
        raise fail(f"--upstream-auth must be one of {', '.join(AUTH_MODES)}, got {upstream_auth!r}")
    checks = asyncio.run(
        diagnose(
            runtime_arn,
            region=region,
            profile=profile,
            endpoint_url=endpoint_url,
            ca_bundle=ca_bundle,
            sts_endpoint_url=sts_endpoint_url,
            auth="presigned" if upstream_auth == "presigned" else "sigv4",
            qualifier=qualifier,
        )
    )
    for check in checks:
        typer.echo(check.line())
    if not all_passed(checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``doctor``."""
    app.command()(doctor)
