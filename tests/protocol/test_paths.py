from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.errors import InvalidArn, InvalidPath, InvalidShellId, ProtocolError
from recorder.protocol import SESSION_HEADER, RuntimeArn, ShellRequest, parse_target, shell_path
from recorder.protocol.paths import MAX_TARGET_LENGTH

ARN = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/agent-1"


def test_path_encodes_the_whole_arn() -> None:
    assert shell_path(ARN) == f"/runtimes/{quote(ARN, safe='')}/ws/shells"
    assert "/" not in shell_path(ARN)[len("/runtimes/") : -len("/ws/shells")]


def test_parse_target_reads_query_and_header() -> None:
    target = shell_path(ARN) + "?qualifier=prod&shellId=dbg"
    req = parse_target(target, {SESSION_HEADER: "sess-1"})
    assert req == ShellRequest(RuntimeArn.parse(ARN), "prod", "dbg", "sess-1")


def test_session_id_from_query_when_no_header() -> None:
    req = ShellRequest(RuntimeArn.parse(ARN), None, "s1", "sess-2")
    assert parse_target(req.target(session_in_query=True)).session_id == "sess-2"
    assert parse_target(req.target()).session_id is None


def test_header_wins_over_query() -> None:
    req = ShellRequest(RuntimeArn.parse(ARN), None, "s1", "from-query")
    assert parse_target(req.target(session_in_query=True), {SESSION_HEADER: "from-header"}).session_id == (
        "from-header"
    )


def test_sdk_url_parses() -> None:
    client_mod = pytest.importorskip("bedrock_agentcore.runtime.agent_core_runtime_client")
    client = client_mod.AgentCoreRuntimeClient.__new__(client_mod.AgentCoreRuntimeClient)
    client.region = "us-west-2"
    url = client._build_shell_url(ARN, "DEFAULT", "my-shell")
    target = url.split("amazonaws.com", 1)[1]
    req = parse_target(target)
    assert (str(req.arn), req.qualifier, req.shell_id) == (ARN, "DEFAULT", "my-shell")


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("/", InvalidPath),
        ("/runtimes/x/ws/other", InvalidPath),
        ("/runtimes/" + quote("arn:aws:nope", safe="") + "/ws/shells", InvalidArn),
        (shell_path(ARN) + "?shellId=-bad", InvalidShellId),
        ("/" + "x" * MAX_TARGET_LENGTH, InvalidPath),
    ],
)
def test_bad_targets_are_named_errors(target: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_target(target)


@given(st.text(max_size=400))
def test_arbitrary_targets_raise_only_protocol_errors(text: str) -> None:
    try:
        parse_target(text)
    except ProtocolError:
        pass
