"""Access tokens (only their SHA-256 kept) and the audit log, on a migrated database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from recorder.errors import ConfigError
from recorder.index.access import (
    MAX_TOKEN_TTL,
    TOKEN_PREFIX,
    create_token,
    find_token,
    list_audit,
    list_tokens,
    record_audit,
    revoke_token,
    token_digest,
    token_id,
)
from recorder.index.models import AccessToken
from recorder.index.store import Index


def test_a_token_is_stored_only_as_its_sha256_and_found_again(index: Index) -> None:
    row, token = create_token(index, "alice", ["ops", "dev"], timedelta(hours=8))
    assert token.startswith(TOKEN_PREFIX) and token_id(token) == row.id
    with index.session() as session:
        stored = session.scalars(sa.select(AccessToken)).one()
        values = [str(getattr(stored, c.key)) for c in sa.inspect(AccessToken).columns]
    assert stored.sha256 == token_digest(token)
    assert not any(token in v or token.split("_", 2)[2] in v for v in values)
    found = find_token(index, token)
    assert found is not None and found.principal == "alice" and found.groups == ("ops", "dev")
    assert found.expires_at is not None and found.expires_at - found.created_at == timedelta(hours=8)


def test_unknown_malformed_and_tampered_tokens_are_not_found(index: Index) -> None:
    _row, token = create_token(index, "alice")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for candidate in (tampered, "rec_nothex_abc", "", "Bearer " + token, token + "x"):
        assert find_token(index, candidate) is None, candidate


def test_revoked_and_expired_tokens_have_their_state(index: Index) -> None:
    then = datetime(2025, 1, 1, tzinfo=UTC)
    row, token = create_token(index, "bob", ttl=timedelta(minutes=30), now=then)
    assert row.state(then + timedelta(minutes=29)) == "active"
    assert row.state(then + timedelta(minutes=30)) == "expired"
    revoked = revoke_token(index, row.id, now=then)
    again = revoke_token(index, row.id)
    assert revoked.revoked_at == again.revoked_at == then
    assert find_token(index, token) is not None and find_token(index, token).state(then) == "revoked"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="no token"):
        revoke_token(index, "000000000000")


def test_token_limits_are_checked(index: Index) -> None:
    with pytest.raises(ConfigError, match="lifetime"):
        create_token(index, "a", ttl=MAX_TOKEN_TTL + timedelta(seconds=1))
    with pytest.raises(ConfigError, match="principal"):
        create_token(index, "")
    with pytest.raises(ConfigError, match="group"):
        create_token(index, "a", ["has space"])
    assert list_tokens(index) == []


def test_audit_entries_are_listed_newest_first_with_their_arguments(index: Index) -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    record_audit(index, actor="eve", command="show", arguments={"connection_id": 4}, targets=["4"], at=t0)
    record_audit(
        index, actor="sam", command="export", arguments={"target": "5"}, targets=["5"], at=t0 + timedelta(1)
    )
    rows = list_audit(index)
    assert [(r.actor, r.command, r.targets) for r in rows] == [
        ("sam", "export", ["5"]),
        ("eve", "show", ["4"]),
    ]
    assert rows[1].arguments == {"connection_id": 4}
    assert [r.actor for r in list_audit(index, since=t0 + timedelta(hours=1))] == ["sam"]
    assert [r.actor for r in list_audit(index, actor="eve")] == ["eve"]
