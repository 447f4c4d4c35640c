"""Policy rules: parsing (one-line errors naming the rule or line) and decisions (deny wins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder.errors import PolicyError
from recorder.proxy.policy import MAX_POLICY_BYTES, MAX_RULES, load_policy, parse_policy

DEV = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/dev-api"
PROD = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/prod-api"

POLICY = """
[[allow]]
name = "ops"
groups = ["ops"]

[[allow]]
principals = "carol"
runtimes = ["*:runtime/dev-*"]
qualifiers = ["DEFAULT", "STAGING"]

[[deny]]
name = "nobody on prod but ops-lead"
runtimes = ["*:runtime/prod-*"]

[[allow]]
principals = ["lead"]
runtimes = ["*:runtime/prod-*"]
"""


@pytest.mark.parametrize(
    ("principal", "groups", "runtime", "qualifier", "allowed", "rule"),
    [
        ("alice", ["ops"], DEV, "DEFAULT", True, 'allow[1] "ops"'),
        ("alice", ["ops"], PROD, "DEFAULT", False, 'deny[1] "nobody on prod but ops-lead"'),
        ("lead", [], PROD, "DEFAULT", False, 'deny[1] "nobody on prod but ops-lead"'),
        ("carol", [], DEV, "STAGING", True, "allow[2]"),
        ("carol", [], DEV, "LIVE", False, "default deny (no rule allows)"),
        ("carol", [], PROD.replace("prod", "test"), "DEFAULT", False, "default deny (no rule allows)"),
        ("dave", ["dev"], DEV, "DEFAULT", False, "default deny (no rule allows)"),
        (None, [], DEV, "DEFAULT", False, "default deny (no rule allows)"),
    ],
)
def test_deny_wins_then_allow_then_default_deny(
    principal: str | None, groups: list[str], runtime: str, qualifier: str, allowed: bool, rule: str
) -> None:
    decision = parse_policy(POLICY).decide(principal, groups, runtime, qualifier)
    assert (decision.allowed, decision.rule) == (allowed, rule)


def test_an_empty_policy_denies_everything() -> None:
    assert not parse_policy("").decide("root", ["admin"], DEV, "DEFAULT").allowed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[allow]\n", "not valid TOML: "),
        ("[[allow]]\ngroups = [1]\n", "p.toml: allow[1]: groups must be a non-empty string or list"),
        ("[[deny]]\n[[deny]]\nwho = 'x'\n", "p.toml: deny[2]: unknown key(s) ['who']"),
        ("[[permit]]\n", "unknown top-level key(s) ['permit']"),
        ("allow = 3\n", "allow must be an array of tables"),
        ("[[allow]]\nname = 5\n", "allow[1]: name must be a string"),
        ("[[allow]]\nruntimes = []\n", "allow[1]: runtimes must be a non-empty"),
    ],
)
def test_malformed_policies_are_one_line_errors_naming_the_rule(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.toml")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_toml_syntax_error_names_its_line() -> None:
    with pytest.raises(PolicyError, match="line 3"):
        parse_policy('[[allow]]\ngroups = ["ops"]\nname = \n')


def test_policy_limits(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("#" * (MAX_POLICY_BYTES + 1))
    with pytest.raises(PolicyError, match="exceeds"):
        load_policy(big)
    with pytest.raises(PolicyError, match=f"{MAX_RULES}-rule limit"):
        parse_policy("[[allow]]\n" * (MAX_RULES + 1))
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")
