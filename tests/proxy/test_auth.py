"""Authenticators over a real SQLite index and real keys, and the failure rate limiter."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from recorder.errors import AuthenticationFailed, ConfigError
from recorder.index.access import create_token, list_tokens, revoke_token
from recorder.index.db import make_engine, upgrade
from recorder.index.store import Index
from recorder.protocol.bearer import bearer_subprotocols
from recorder.proxy.auth import (
    COOLDOWN,
    FAILURE_WINDOW,
    MAX_FAILURES,
    MAX_JWKS_BYTES,
    Identity,
    JwtAuthenticator,
    RateLimiter,
    TokenAuthenticator,
    ensure_local_token,
    is_loopback_host,
    request_token,
)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    yield Index(engine)
    engine.dispose()


def test_token_authenticator_accepts_active_tokens_only(index: Index) -> None:
    now = datetime.now(UTC)
    _, good = create_token(index, "alice", ["ops"], timedelta(hours=1))
    old, expired = create_token(index, "bob", ttl=timedelta(minutes=1), now=now - timedelta(hours=1))
    gone, revoked = create_token(index, "carol")
    revoke_token(index, gone.id)
    auth = TokenAuthenticator(index)
    assert auth.authenticate(good) == Identity("alice", ("ops",))
    for token, principal, reason in ((expired, "bob", "expired"), (revoked, "carol", "revoked")):
        with pytest.raises(AuthenticationFailed) as info:
            auth.authenticate(token)
        assert info.value.principal == principal and reason in info.value.reason
    for nothing in (None, "", "rec_123"):
        with pytest.raises(AuthenticationFailed) as info:
            auth.authenticate(nothing)
        assert info.value.principal is None


def test_the_header_wins_over_the_subprotocol() -> None:
    assert request_token({"Authorization": "Bearer one"}, bearer_subprotocols("two")) == "one"
    assert request_token({}, bearer_subprotocols("two")) == "two"
    assert request_token({"Authorization": "Basic x"}, []) is None


def test_rate_limiter_blocks_after_the_limit_within_the_window_then_cools_down() -> None:
    now = [1000.0]
    limiter = RateLimiter(clock=lambda: now[0])
    for _ in range(MAX_FAILURES - 1):
        assert not limiter.failure("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") is None
    assert limiter.failure("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == COOLDOWN
    assert limiter.retry_after("10.0.0.2") is None
    now[0] += COOLDOWN
    assert limiter.retry_after("10.0.0.1") is None


def test_failures_outside_the_window_do_not_count() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    for _ in range(MAX_FAILURES * 3):
        assert not limiter.failure("h")
        # At most MAX_FAILURES - 1 of them ever fall within one window.
        now[0] += FAILURE_WINDOW / (MAX_FAILURES - 2)
    assert limiter.retry_after("h") is None


def test_rate_limiter_remembers_a_bounded_number_of_addresses() -> None:
    limiter = RateLimiter(max_failures=2, max_tracked=3, clock=lambda: 0.0)
    for i in range(5):
        limiter.failure(f"a{i}")
    # a0 was forgotten: its next failure is its first again.
    assert not limiter.failure("a0")
    assert limiter.failure("a4")


def test_loopback_hosts() -> None:
    assert all(is_loopback_host(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "127.1.2.3"))
    assert not any(is_loopback_host(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))


def test_local_token_file_is_0600_and_reused_while_it_works(index: Index, tmp_path: Path) -> None:
    path = tmp_path / "local-token"
    assert ensure_local_token(index, path, "me")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert TokenAuthenticator(index).authenticate(token) == Identity("me")
    assert not ensure_local_token(index, path, "me")
    assert path.read_text().strip() == token
    revoke_token(index, list_tokens(index)[0].id)
    assert ensure_local_token(index, path, "me")
    assert path.read_text().strip() != token


def _setup_jwt(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, JwtAuthenticator]:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "a", "alg": "ES256"}]}))
    auth = JwtAuthenticator(
        issuer="iss", audience="aud", jwks=str(path), principal_claim="email", groups_claim="roles"
    )
    return key, auth


def test_jwt_claims_map_to_principal_and_groups(tmp_path: Path) -> None:
    key, auth = _setup_jwt(tmp_path)
    claims = {"iss": "iss", "aud": "aud", "exp": int(time.time()) + 60, "email": "e@x", "roles": ["r1", 2]}
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "a"})
    assert auth.authenticate(token) == Identity("e@x", ("r1",))
    no_principal = jwt.encode({**claims, "email": 5}, key, algorithm="ES256", headers={"kid": "a"})
    with pytest.raises(AuthenticationFailed, match="no string claim"):
        auth.authenticate(no_principal)
    no_exp = jwt.encode({k: v for k, v in claims.items() if k != "exp"}, key, algorithm="ES256")
    with pytest.raises(AuthenticationFailed, match="invalid JWT"):
        auth.authenticate(no_exp)
    unknown_kid = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "b"})
    with pytest.raises(AuthenticationFailed, match="no single JWKS key"):
        auth.authenticate(unknown_kid)


def test_bad_jwks_files_are_config_errors(tmp_path: Path) -> None:
    cases = {"missing.json": None, "junk.json": "not json", "big.json": " " * (MAX_JWKS_BYTES + 1)}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(ConfigError):
            JwtAuthenticator(issuer="i", audience="a", jwks=str(path))
