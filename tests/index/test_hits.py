"""A search hit on the wire: what the proxy sends is what the client reads back, and nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from recorder.errors import ProtocolError
from recorder.index.hits import Hit, hit_from_wire, hit_to_wire

HIT = Hit(
    connection_id=7,
    kind="command",
    offset=12.5,
    text="kubectl get pods \u00e9\u2028",
    exit_code=1,
    principal="alice",
    shell_id="shell-1",
    runtime_arn="arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/dev",
    started_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    spans=((0, 7), (12, 16)),
    seq=3,
)


def test_a_hit_survives_the_wire_as_json_text() -> None:
    assert hit_from_wire(json.loads(json.dumps(hit_to_wire(HIT)))) == HIT
    unknown = Hit(**{**_fields(HIT), "exit_code": None, "principal": None, "spans": ()})
    assert hit_from_wire(json.loads(json.dumps(hit_to_wire(unknown)))) == unknown
    # Another zone is the same moment: sorting and the table use it as such.
    tokyo = HIT.started_at.astimezone(timezone(timedelta(hours=9)))
    east = hit_to_wire(HIT) | {"started_at": tokyo.isoformat()}
    assert hit_from_wire(east).sort_key() == HIT.sort_key()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "7"}, "a search hit has a bad field: id is '7'"),
        ({"id": True}, "a search hit has a bad field: id is True"),
        ({"kind": "secret"}, "a search hit has an unknown kind 'secret'"),
        ({"offset": None}, "a search hit has a bad field: offset is None"),
        ({"text": 5}, "a search hit has a bad field: text is 5"),
        ({"exit_code": 1.5}, "a search hit has a bad field: exit_code is 1.5"),
        ({"spans": [[1, 2, 3]]}, "a search hit has a bad field: spans holds [1, 2, 3]"),
        ({"spans": [[1, "2"]]}, "a search hit has a bad field: spans holds [1, '2']"),
        ({"started_at": "yesterday"}, "a search hit has a bad field: Invalid isoformat string: 'yesterday'"),
        ({"started_at": "2026-01-02T03:04:05"}, "a search hit's started_at has no time zone"),
        ({"started_at": "0001-01-01T00:00:00+14:00"}, "a search hit's started_at is out of range"),
        ({"offset": -1.0}, "a search hit's offset is out of range: -1.0"),
        ({"offset": float("inf")}, "a search hit's offset is out of range: inf"),
        ({"id": 2**63}, f"a search hit's id is out of range: {2**63}"),
        ({"seq": -1}, "a search hit's seq is out of range: -1"),
        ({"exit_code": -(2**63)}, f"a search hit's exit_code is out of range: {-(2**63)}"),
        ({"spans": [[0, 7], [5, 9]]}, "a search hit's spans are not sorted ranges of its text: [5, 9]"),
        ({"spans": [[0, 99]]}, "a search hit's spans are not sorted ranges of its text: [0, 99]"),
    ],
)
def test_a_malformed_hit_is_one_protocol_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        hit_from_wire(hit_to_wire(HIT) | change)
    assert str(info.value).startswith(message)


def test_a_hit_that_is_not_an_object_or_lacks_a_field_is_refused() -> None:
    with pytest.raises(ProtocolError, match="not a JSON object"):
        hit_from_wire([1, 2])
    missing = hit_to_wire(HIT)
    del missing["seq"]
    with pytest.raises(ProtocolError, match="seq is None"):
        hit_from_wire(missing)


def _fields(hit: Hit) -> dict[str, Any]:
    return {name: getattr(hit, name) for name in Hit.__slots__}  # type: ignore[attr-defined]
