"""``recorder policy check``: the decision, the rule that made it, and the exit status."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from recorder.cli import policy_cmd
from tests.cli.conftest import bare_app

runner = CliRunner()
app = bare_app(policy_cmd)
ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/dev-api"


def test_check_prints_the_decision_and_rule_and_exits_by_it(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('[[allow]]\nname = "ops"\ngroups = ["ops"]\n[[deny]]\nprincipals = ["mallory"]\n')
    base = ["policy", "check", "--runtime", ARN, "--policy", str(policy)]
    allowed = runner.invoke(app, [*base, "--principal", "alice", "--group", "ops"])
    assert allowed.exit_code == 0 and allowed.stdout == 'allow: allow[1] "ops"\n'
    denied = runner.invoke(app, [*base, "--principal", "mallory", "--group", "ops"])
    assert denied.exit_code == 1 and denied.stdout == "deny: deny[1]\n"
    nobody = runner.invoke(app, [*base, "--principal", "bob", "--qualifier", "X"])
    assert nobody.exit_code == 1 and nobody.stdout == "deny: default deny (no rule allows)\n"
    without = runner.invoke(app, ["policy", "check", "--runtime", ARN, "--principal", "bob"])
    assert without.exit_code == 0 and without.stdout.startswith("allow: no policy")


def test_malformed_policy_is_a_one_line_error(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("[[allow]]\nprincipals = 3\n")
    result = runner.invoke(
        app, ["policy", "check", "--runtime", ARN, "--principal", "a", "--policy", str(policy)]
    )
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "allow[1]: principals must be" in lines[0]
