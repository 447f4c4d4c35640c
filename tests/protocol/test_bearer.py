from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.protocol import (
    BEARER_SUBPROTOCOL,
    bearer_subprotocols,
    token_from_authorization,
    token_from_subprotocols,
)


def test_subprotocols_match_the_sdk() -> None:
    client_mod = pytest.importorskip("bedrock_agentcore.runtime.agent_core_runtime_client")
    client = client_mod.AgentCoreRuntimeClient.__new__(client_mod.AgentCoreRuntimeClient)
    client.region = "us-east-1"
    client.logger = __import__("logging").getLogger("sdk")
    _, protos = client.connect_shell_oauth(
        "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/x", bearer_token="tok?en=1"
    )
    assert protos == bearer_subprotocols("tok?en=1")
    assert protos[1] == BEARER_SUBPROTOCOL


def test_token_from_subprotocols() -> None:
    assert token_from_subprotocols(bearer_subprotocols("secret")) == "secret"
    assert token_from_subprotocols([BEARER_SUBPROTOCOL]) is None
    assert token_from_subprotocols([BEARER_SUBPROTOCOL + ".%%%"]) is None
    assert token_from_subprotocols([BEARER_SUBPROTOCOL + "." + "A" * 5000]) is None


def test_token_from_authorization() -> None:
    assert token_from_authorization("Bearer abc") == "abc"
    assert token_from_authorization("bearer  abc ") == "abc"
    for bad in [None, "", "Basic abc", "Bearer", "Bearer   "]:
        assert token_from_authorization(bad) is None


@given(st.text(min_size=1, max_size=200))
def test_any_token_round_trips(token: str) -> None:
    assert token_from_subprotocols(bearer_subprotocols(token)) == token
