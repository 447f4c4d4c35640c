from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.errors import InvalidArn, InvalidShellId, ProtocolError
from recorder.protocol import LOCAL_RUNTIME_ARN, RuntimeArn, validate_session_id, validate_shell_id
from recorder.protocol.ids import InvalidQualifier, InvalidSessionId, validate_qualifier

ARN = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my_agent-AbC123"


def test_parse_arn_components_and_round_trip() -> None:
    arn = RuntimeArn.parse(ARN)
    assert (arn.partition, arn.region, arn.account, arn.runtime_id) == (
        "aws",
        "us-west-2",
        "123456789012",
        "my_agent-AbC123",
    )
    assert str(arn) == ARN
    assert str(RuntimeArn.parse(LOCAL_RUNTIME_ARN)) == LOCAL_RUNTIME_ARN


def test_other_partitions_parse() -> None:
    assert RuntimeArn.parse(
        "arn:aws-us-gov:bedrock-agentcore:us-gov-west-1:123456789012:runtime/x"
    ).region == ("us-gov-west-1")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "arn",
        "arn:aws:s3:us-west-2:123456789012:runtime/x",
        "arn:aws:bedrock-agentcore:us-west-2:123:runtime/x",
        "arn:aws:bedrock-agentcore:us-west-2:123456789012:agent/x",
        "arn:aws:bedrock-agentcore::123456789012:runtime/x",
        "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/",
        "arn:gcp:bedrock-agentcore:us-west-2:123456789012:runtime/x",
        "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/x\n",
        "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/a/b",
    ],
)
def test_malformed_arns_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArn):
        RuntimeArn.parse(bad)


@pytest.mark.parametrize("good", ["a", "A1", "0-_x", "x" * 128, "2f7c6a1e-0c1b-4b55-9a55-1c2d3e4f5a6b"])
def test_valid_shell_ids(good: str) -> None:
    assert validate_shell_id(good) == good


@pytest.mark.parametrize("bad", ["", "-a", "_a", "a b", "a/b", "x" * 129, "a\n", "a?b", "é"])
def test_invalid_shell_ids(bad: str) -> None:
    with pytest.raises(InvalidShellId):
        validate_shell_id(bad)


def test_shell_id_rule_agrees_with_the_sdk() -> None:
    validation = pytest.importorskip("bedrock_agentcore.runtime.shell._validation")
    for candidate in ["a", "-a", "x" * 128, "x" * 129, "a\n", "a_b-c", "a.b"]:
        try:
            validation.validate_shell_id(candidate)
            sdk_ok = True
        except ValueError:
            sdk_ok = False
        try:
            validate_shell_id(candidate)
            ours_ok = True
        except InvalidShellId:
            ours_ok = False
        assert sdk_ok == ours_ok, candidate


def test_session_and_qualifier_validation() -> None:
    assert validate_session_id("2f7c6a1e-0c1b-4b55-9a55-1c2d3e4f5a6b")
    for bad in ["", "a b", "x" * 257, "a\r\nX-Evil: 1"]:
        with pytest.raises(InvalidSessionId):
            validate_session_id(bad)
    assert validate_qualifier("DEFAULT") == "DEFAULT"
    with pytest.raises(InvalidQualifier):
        validate_qualifier("../x")


@given(st.text(max_size=300))
def test_arbitrary_arn_text_raises_only_protocol_errors(text: str) -> None:
    try:
        RuntimeArn.parse(text)
    except ProtocolError:
        pass
