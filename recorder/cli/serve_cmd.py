"""``recorder serve``: the recording proxy."""

from __future__ import annotations

import getpass
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from recorder import logfmt
from recorder.cli import eventloop
from recorder.cli.common import (
    DEFAULT_PROXY_LISTEN,
    DataOption,
    DbOption,
    data_dir,
    db_url,
    fail,
    parse_listen,
)
from recorder.cli.credentials import LOCAL_TOKEN_FILE
from recorder.cli.pipeline import BackgroundIndexer, IndexerStopped
from recorder.errors import RecorderError
from recorder.index.db import make_engine, upgrade
from recorder.index.store import Index
from recorder.logfmt import get_logger
from recorder.proxy.auth import (
    AUTH_MODES,
    Authenticator,
    JwtAuthenticator,
    TokenAuthenticator,
    ensure_local_token,
    is_loopback_host,
)
from recorder.proxy.aws import AUTH_MODES as UPSTREAM_AUTH_MODES
from recorder.proxy.aws import DEFAULT_PRESIGN_EXPIRES, AgentCoreUpstream
from recorder.proxy.batches import SWITCH_INTERVAL
from recorder.proxy.policy import Policy, load_policy
from recorder.proxy.searching import Auditors
from recorder.proxy.server import ProxyServer, ProxySettings
from recorder.proxy.tap import FailurePolicy
from recorder.proxy.upstream import (
    DEFAULT_PING_INTERVAL,
    LocalRuntimeUpstream,
    Upstream,
    WebSocketUpstream,
)

log = get_logger(__name__)


def serve(
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on (port 0 picks a free one).")] = (
        DEFAULT_PROXY_LISTEN
    ),
    data: DataOption = None,
    db: DbOption = None,
    upstream: Annotated[
        str,
        typer.Option(
            help="'local' (the embedded runtime), 'agentcore' (AWS, signed with this host's AWS "
            "credentials), or a ws:// or wss:// URL speaking the protocol."
        ),
    ] = "local",
    cast_version: Annotated[int, typer.Option(help="asciicast version to write: 2 or 3.")] = 2,
    runtime_shell: Annotated[
        str | None, typer.Option(help="With --upstream local: the command each shell runs (default bash).")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(help="With --upstream agentcore: the AWS region (default: the profile's or the env's)."),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="With --upstream agentcore: the AWS profile whose credentials sign.")
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(help="With --upstream agentcore: https:// or wss:// endpoint (a VPC endpoint, say)."),
    ] = None,
    ca_bundle: Annotated[
        str | None,
        typer.Option(help="With --upstream agentcore: CA bundle to verify TLS (default: AWS_CA_BUNDLE)."),
    ] = None,
    upstream_auth: Annotated[
        str, typer.Option(help="With --upstream agentcore: 'sigv4' (signed headers) or 'presigned' (URL).")
    ] = "sigv4",
    presign_expires: Annotated[
        int, typer.Option(help="With --upstream-auth presigned: URL lifetime in seconds (at most 300).")
    ] = DEFAULT_PRESIGN_EXPIRES,
    upstream_ping_interval: Annotated[
        float, typer.Option(help="Seconds between RFC 6455 pings to the upstream (0 turns them off).", min=0)
    ] = DEFAULT_PING_INTERVAL,
    auth: Annotated[
        str,
        typer.Option(
            help="Client authentication: 'token' (recorder token create), 'jwt' (OIDC), or 'none' "
            "(loopback listen addresses only)."
        ),
    ] = "token",
    policy: Annotated[
        Path | None, typer.Option(help="TOML access policy of [[allow]] and [[deny]] rules (default: allow).")
    ] = None,
    jwt_issuer: Annotated[str | None, typer.Option(help="With --auth jwt: the required iss.")] = None,
    jwt_audience: Annotated[str | None, typer.Option(help="With --auth jwt: the required aud.")] = None,
    jwt_jwks: Annotated[
        str | None, typer.Option(help="With --auth jwt: the issuer's keys, a JWKS JSON file or https:// URL.")
    ] = None,
    jwt_principal_claim: Annotated[str, typer.Option(help="With --auth jwt: the principal's claim.")] = "sub",
    jwt_groups_claim: Annotated[str, typer.Option(help="With --auth jwt: the groups' claim.")] = "groups",
    on_record_failure: Annotated[
        FailurePolicy,
        typer.Option(
            help="When a recording cannot be written (disk full, I/O error, writer stuck): 'close' ends "
            "the connection (shell left detached); 'continue' goes on and marks the gap in the recording."
        ),
    ] = FailurePolicy.CLOSE,
    mask_secrets: Annotated[
        bool,
        typer.Option(help="Mask input typed while the remote terminal does not echo it (password prompts)."),
    ] = True,
    auditor: Annotated[
        list[str] | None,
        typer.Option(
            "--auditor",
            help="A principal who may search the index through the proxy (recorder search --server); "
            "repeatable. Each search is in the audit log under the principal.",
        ),
    ] = None,
    auditor_group: Annotated[
        list[str] | None,
        typer.Option("--auditor-group", help="A group whose members may search, like --auditor; repeatable."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run the recording proxy in front of an upstream shell service."""
    logfmt.configure(log_level)
    if log_level.upper() != "DEBUG":
        # botocore's INFO lines ("Found credentials in ...") repeat what upstream.agentcore.ready says.
        logging.getLogger("botocore").setLevel(logging.WARNING)
    host, port = parse_listen(listen)
    if cast_version not in (2, 3):
        raise fail("--cast-version must be 2 or 3")
    directory = data_dir(data)
    url = db_url(db, directory)
    aws_options = {
        "--region": region,
        "--profile": profile,
        "--endpoint-url": endpoint_url,
        "--ca-bundle": ca_bundle,
    }
    if upstream != "agentcore":
        given = [name for name, value in aws_options.items() if value is not None]
        if upstream_auth != "sigv4" or presign_expires != DEFAULT_PRESIGN_EXPIRES:
            given.append("--upstream-auth/--presign-expires")
        if given:
            raise fail(f"only --upstream agentcore takes {', '.join(given)}")
    if upstream_auth not in UPSTREAM_AUTH_MODES:
        raise fail(f"--upstream-auth must be one of {', '.join(UPSTREAM_AUTH_MODES)}, got {upstream_auth!r}")
    jwt_options = {"--jwt-issuer": jwt_issuer, "--jwt-audience": jwt_audience, "--jwt-jwks": jwt_jwks}
    if auth not in AUTH_MODES:
        raise fail(f"--auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
    auditors = Auditors.of(auditor or (), auditor_group or ())
    if auditors and auth == "none":
        raise fail("--auditor and --auditor-group need --auth token or jwt: searches are logged by principal")
    if auth == "none" and not is_loopback_host(host):
        raise fail(f"--auth none is only allowed on a loopback listen address, not {host}")
    if auth != "jwt" and any(v is not None for v in jwt_options.values()):
        raise fail("--jwt-issuer, --jwt-audience and --jwt-jwks need --auth jwt")
    if auth == "jwt" and any(v is None for v in jwt_options.values()):
        missing = [name for name, value in jwt_options.items() if value is None]
        raise fail(f"--auth jwt needs {', '.join(missing)}")
    access_policy: Policy | None = None
    if policy is not None:
        try:
            access_policy = load_policy(policy)
        except RecorderError as exc:
            raise fail(str(exc)) from None
    target: Upstream
    if upstream == "local":
        target = LocalRuntimeUpstream(shell=runtime_shell)
    elif upstream == "agentcore":
        try:
            agentcore = AgentCoreUpstream(
                region,
                profile,
                endpoint_url,
                ca_bundle,
                "presigned" if upstream_auth == "presigned" else "sigv4",
                presign_expires,
                upstream_ping_interval,
            )
            # Credentials, region and trust are resolved now, so a bad setting fails before serving.
            agentcore.load()
        except RecorderError as exc:
            raise fail(str(exc)) from None
        target = agentcore
    elif upstream.startswith(("ws://", "wss://")):
        target = WebSocketUpstream(upstream, ping_interval=upstream_ping_interval or None)
    else:
        raise fail(f"--upstream must be 'local', 'agentcore' or a ws:// or wss:// URL, got {upstream!r}")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        upgrade(url)
        index = Index(make_engine(url))
    except OSError as exc:
        raise fail(f"cannot use data directory {directory}: {exc.strerror}") from None
    except RecorderError as exc:
        raise fail(str(exc)) from None
    authenticator: Authenticator | None = None
    try:
        if auth == "token":
            authenticator = TokenAuthenticator(index)
            # The first start makes a token for the local user, which `recorder shell` and `exec` on
            # this machine read by themselves: `make run` needs no setup step.
            token_file = directory / LOCAL_TOKEN_FILE
            if ensure_local_token(index, token_file, getpass.getuser()):
                typer.echo(f"created a token for {getpass.getuser()} in {token_file}", err=True)
        elif auth == "jwt":
            assert jwt_issuer and jwt_audience and jwt_jwks
            authenticator = JwtAuthenticator(
                issuer=jwt_issuer,
                audience=jwt_audience,
                jwks=jwt_jwks,
                principal_claim=jwt_principal_claim,
                groups_claim=jwt_groups_claim,
            )
    except RecorderError as exc:
        raise fail(str(exc)) from None
    if authenticator is None:
        typer.echo("warning: --auth none: anyone on this machine may open shells, as no principal", err=True)
    if access_policy is None:
        typer.echo(
            "warning: no --policy: every authenticated principal may open shells on every runtime", err=True
        )
    settings = ProxySettings(
        data_dir=directory,
        host=host,
        port=port,
        cast_version=cast_version,
        authenticator=authenticator,
        policy=access_policy,
        on_record_failure=on_record_failure,
        mask_secrets=mask_secrets,
        auditors=auditors,
    )

    # After each connection: its commands, output text and typed input go to the search index,
    # in a child process (see BackgroundIndexer), one recording at a time.
    indexer = BackgroundIndexer(url, directory, log_level)

    def index_for_search(conn_id: int) -> None:
        try:
            indexer.index(conn_id)
        except IndexerStopped:
            log.info("index.deferred", id=conn_id, why="proxy stopping; indexed at next start")

    server = ProxyServer(settings, target, index, on_finished=index_for_search, on_stop=indexer.close)

    def ready(srv: ProxyServer) -> None:
        typer.echo(f"listening on ws://{host}:{srv.port}", err=True)
        typer.echo(f"recordings in {directory}, index at {url}", err=True)
        if auditors:
            who = sorted(auditors.principals) + [f"group {g}" for g in sorted(auditors.groups)]
            typer.echo(f"search open to {', '.join(who)} at http://{host}:{srv.port}/v1/search", err=True)

    sys.setswitchinterval(SWITCH_INTERVAL)  # the relay gets the interpreter lock back sooner
    try:
        eventloop.run(server.run_until_signalled(ready))
    except RecorderError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot listen on {listen}: {exc.strerror}") from None
    finally:
        indexer.close()


def register(app: typer.Typer) -> None:
    """Add ``serve``."""
    app.command()(serve)
