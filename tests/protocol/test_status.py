from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.errors import InvalidStatus, ProtocolError
from recorder.protocol import status
from recorder.protocol.status import Confirmation, Termination


def test_confirmation_matches_the_service_shape() -> None:
    obj = json.loads(status.confirmation("sh-1"))
    assert obj == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {"shellId": "sh-1", "reconnected": False},
        "status": "Success",
    }


def test_reconnect_confirmation_carries_bytes_dropped() -> None:
    parsed = status.parse(status.confirmation("abc", reconnected=True, bytes_dropped=12))
    assert parsed == Confirmation("abc", reconnected=True, bytes_dropped=12)


def test_exit_zero_is_success_with_empty_metadata() -> None:
    obj = json.loads(status.exited(0))
    assert obj == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    assert status.parse(status.exited(0)) == Termination(exit_code=0)


def test_non_zero_exit() -> None:
    obj = json.loads(status.exited(3))
    assert obj["status"] == "Failure"
    assert obj["reason"] == "NonZeroExitCode"
    assert obj["message"] == "command terminated with exit code 3"
    assert obj["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    parsed = status.parse(status.exited(3))
    assert isinstance(parsed, Termination) and parsed.exit_code == 3 and parsed.signal is None


def test_killed_by_signal_is_128_plus_n_with_signal_cause() -> None:
    obj = json.loads(status.exited(0, signal=9))
    assert obj["details"]["causes"] == [
        {"reason": "ExitCode", "message": "137"},
        {"reason": "Signal", "message": "9"},
    ]
    parsed = status.parse(status.exited(0, signal=9))
    assert parsed == Termination(exit_code=137, signal=9, message="command terminated with exit code 137")


def test_internal_error() -> None:
    obj = json.loads(status.internal_error("boom"))
    assert obj["reason"] == "InternalError" and obj["code"] == 500
    parsed = status.parse(status.internal_error("boom"))
    assert isinstance(parsed, Termination) and parsed.internal_error and parsed.exit_code is None


def test_sdk_parses_our_payloads_the_same_way() -> None:
    session = pytest.importorskip("bedrock_agentcore.runtime.shell.session")
    parse_exit = session.ShellSession._parse_exit_code
    for payload, code in [(status.exited(0), 0), (status.exited(5), 5), (status.exited(0, signal=15), 143)]:
        assert parse_exit(json.loads(payload)) == code
        assert session.ShellSession._is_termination_status(json.loads(payload))
    assert session.ShellSession._is_confirmation_status(json.loads(status.confirmation("x")))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[]",
        b'{"status":"Maybe"}',
        b'{"status":"Success","metadata":[]}',
        b'{"status":"Failure","details":{"causes":[{"reason":"ExitCode","message":"x"}]}}',
    ],
)
def test_malformed_status_is_a_named_error(payload: bytes) -> None:
    with pytest.raises(InvalidStatus):
        status.parse(payload)


@given(st.binary(max_size=512))
def test_arbitrary_status_bytes_raise_only_named_errors(data: bytes) -> None:
    try:
        status.parse(data)
    except ProtocolError:
        pass


@given(st.integers(0, 255))
def test_exit_code_round_trips(code: int) -> None:
    parsed = status.parse(status.exited(code))
    assert isinstance(parsed, Termination) and parsed.exit_code == code
