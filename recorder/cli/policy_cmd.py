"""``recorder policy check``: what the access policy decides for a principal, runtime and qualifier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.common import fail
from recorder.errors import RecorderError
from recorder.protocol.ids import DEFAULT_QUALIFIER
from recorder.proxy.policy import load_policy

policy_app = typer.Typer(name="policy", help="Check the proxy's access policy.", no_args_is_help=True)


@policy_app.command("check")
def check(
    principal: Annotated[str, typer.Option(help="Who asks.")],
    runtime: Annotated[str, typer.Option(help="The runtime ARN asked for.")],
    policy: Annotated[
        Path | None, typer.Option(help="The TOML policy file `recorder serve --policy` uses.")
    ] = None,
    group: Annotated[list[str] | None, typer.Option("--group", help="A group of the principal.")] = None,
    qualifier: Annotated[str, typer.Option(help="The endpoint qualifier.")] = DEFAULT_QUALIFIER,
) -> None:
    """Print allow or deny and the rule that decided; exit 0 on allow, 1 on deny."""
    if policy is None:
        typer.echo("allow: no policy (every authenticated principal may open any shell)")
        return
    try:
        decision = load_policy(policy).decide(principal, group or [], runtime, qualifier)
    except RecorderError as exc:
        raise fail(str(exc), 2) from None
    typer.echo(f"{'allow' if decision.allowed else 'deny'}: {decision.rule}")
    if not decision.allowed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``policy`` group."""
    app.add_typer(policy_app)
