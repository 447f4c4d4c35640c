"""``recorder doctor`` through the command line: help and argument errors (the checks themselves are
exercised against AWS stand-ins in tests/proxy/test_doctor.py)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from recorder.cli import doctor_cmd
from tests.cli.conftest import bare_app
from tests.procs import TEST_ARN

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    return bare_app(doctor_cmd)


def test_doctor_help_names_the_options(app: typer.Typer) -> None:
    result = runner.invoke(app, ["doctor", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in (
        "--runtime-arn",
        "--region",
        "--profile",
        "--endpoint-url",
        "--ca-bundle",
        "--sts-endpoint-url",
    ):
        assert option in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream", "local"], "doctor checks --upstream agentcore only"),
        (["--upstream-auth", "basic"], "--upstream-auth must be one of sigv4, presigned"),
    ],
)
def test_doctor_refuses_what_it_cannot_check(app: typer.Typer, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["doctor", "--runtime-arn", TEST_ARN, *args])
    assert result.exit_code == 1
    assert message in result.output
