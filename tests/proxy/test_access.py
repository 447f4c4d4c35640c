"""Authentication and authorisation at a real proxy process, before the upgrade: tokens, JWTs,
policy, the failure rate limit, and every refusal in the index."""

from __future__ import annotations

import asyncio
import getpass
import json
import stat
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from recorder.cast.reader import open_cast
from recorder.cli.credentials import LOCAL_TOKEN_FILE
from recorder.index.access import TOKEN_PREFIX
from recorder.protocol import Channel, RuntimeArn, ShellRequest, decode, encode
from recorder.protocol.bearer import bearer_subprotocols
from recorder.protocol.paths import SESSION_HEADER
from recorder.proxy.auth import MAX_FAILURES
from recorder.proxy.server import UNAUTHENTICATED_BODY
from tests.procs import TEST_ARN, LocalShellClient, run_recorder
from tests.proxy.conftest import Stack, stack

ISSUER = "https://idp.example.test/"
AUDIENCE = "recorder-proxy"


def _request() -> ShellRequest:
    return ShellRequest(RuntimeArn.parse(TEST_ARN), None, uuid.uuid4().hex, str(uuid.uuid4()))


async def refused_status(base: str, token: str | None = None, subprotocol: bool = False) -> tuple[int, bytes]:
    """The HTTP status and body the proxy refuses an upgrade with."""
    req = _request()
    headers = {SESSION_HEADER: req.session_id or ""}
    protocols = None
    if token is not None and subprotocol:
        protocols = bearer_subprotocols(token)
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    with pytest.raises(InvalidStatus) as info:
        async with connect(base + req.target(), additional_headers=headers, subprotocols=protocols):  # type: ignore[arg-type]
            pass
    return info.value.response.status_code, info.value.response.body


async def run_exit(base: str, token: str, code: int) -> bool:
    """Open a shell with ``Authorization: Bearer`` and exit with ``code``; True when STATUS frames came."""
    req = _request()
    headers = {SESSION_HEADER: req.session_id or "", "Authorization": f"Bearer {token}"}
    statuses: list[bytes] = []
    async with asyncio.timeout(30), connect(base + req.target(), additional_headers=headers) as ws:
        await ws.send(encode(Channel.STDIN, f"exit {code}\r".encode()))
        try:
            async for message in ws:
                assert isinstance(message, bytes)
                frame = decode(message)
                if frame.channel == Channel.STATUS:
                    statuses.append(frame.payload)
        except ConnectionClosed:
            pass
    return bool(statuses)


async def sdk_oauth_exit(base: str, token: str, code: int) -> int | None:
    """The public SDK's OAuth mode (token in the subprotocol), through the proxy."""
    sdk = pytest.importorskip("bedrock_agentcore.runtime.shell")
    session = sdk.ShellSession(LocalShellClient(base), TEST_ARN, auth=sdk.OAuthAuth(bearer_token=token))
    async with asyncio.timeout(30), session as sh:
        await sh.send(f"exit {code}\n")
        async for _frame in sh:
            pass
    return session.exit_code  # type: ignore[no-any-return]


def create_token(s: Stack, principal: str, *groups: str) -> str:
    args = ["token", "create", "--principal", principal, "--data-dir", str(s.data_dir), "--db", s.db_url]
    for g in groups:
        args += ["--group", g]
    result = run_recorder(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def refusals_json(s: Stack) -> list[dict[str, object]]:
    result = run_recorder("list", "--refused", "--json", "--data-dir", str(s.data_dir), "--db", s.db_url)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_tokens_in_the_header_and_the_subprotocol_authenticate_and_bad_ones_get_401(
    tmp_path: Path,
) -> None:
    with stack(tmp_path, "--auth", "token") as s:
        assert await refused_status(s.url) == (401, UNAUTHENTICATED_BODY.encode())
        wrong = "rec_0123456789ab_" + "x" * 43
        assert await refused_status(s.url, wrong) == (401, UNAUTHENTICATED_BODY.encode())
        assert (await refused_status(s.url, "garbage", subprotocol=True))[0] == 401

        token = create_token(s, "alice", "ops")
        assert token.startswith("rec_")
        assert await run_exit(s.url, token, 3)
        assert await sdk_oauth_exit(s.url, token, 7) == 7
        rows = s.finished(2)
        assert {r.principal for r in rows} == {"alice"}
        assert {r.exit_code for r in rows} == {3, 7}
        with open_cast(s.cast_path(rows[0])) as reader:
            assert reader.header.context["principal"] == "alice"

        listed = run_recorder("token", "list", "--json", "--data-dir", str(s.data_dir), "--db", s.db_url)
        secret = token.removeprefix(TOKEN_PREFIX).split("_", 1)[1]  # the secret itself may hold "_"
        assert len(secret) == 43 and token not in listed.stdout and secret not in listed.stdout
        alice = next(json.loads(x) for x in listed.stdout.splitlines() if '"alice"' in x)
        assert alice["groups"] == ["ops"] and alice["state"] == "active"
        revoked = run_recorder(
            "token", "revoke", alice["id"], "--data-dir", str(s.data_dir), "--db", s.db_url
        )
        assert revoked.returncode == 0, revoked.stderr
        assert (await refused_status(s.url, token))[0] == 401

        refusals = refusals_json(s)
        assert [r["http_status"] for r in refusals] == [401, 401, 401, 401]
        # The revoked token named its principal: the refusal says who it was.
        assert refusals[0]["principal"] == "alice" and "revoked" in str(refusals[0]["reason"])
        assert all(r["runtime_arn"] == TEST_ARN for r in refusals)


async def test_repeated_failures_from_one_address_are_rate_limited(tmp_path: Path) -> None:
    with stack(tmp_path, "--auth", "token") as s:
        token = create_token(s, "alice")
        for _ in range(MAX_FAILURES):
            assert (await refused_status(s.url, "rec_wrong"))[0] == 401
        # In the cool-down even a good token is refused, with 429 and Retry-After.
        status, body = await refused_status(s.url, token)
        assert status == 429 and b"too many" in body
        statuses = [r["http_status"] for r in refusals_json(s)]
        assert statuses.count(401) == MAX_FAILURES and statuses[0] == 429


POLICY = """
[[allow]]
name = "ops everywhere"
groups = ["ops"]

[[deny]]
name = "no prod for anyone"
runtimes = ["*:runtime/prod-*"]

[[allow]]
principals = ["carol"]
runtimes = ["arn:aws:bedrock-agentcore:*:*:runtime/test-*"]
qualifiers = ["STAGING"]
"""


async def test_policy_refuses_with_403_and_the_refusal_is_listed(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    with stack(tmp_path, "--auth", "token", "--policy", str(policy)) as s:
        assert "no --policy" not in s.proxy.text
        alice, bob = create_token(s, "alice", "ops"), create_token(s, "bob", "dev")
        assert await run_exit(s.url, alice, 0)
        assert await refused_status(s.url, bob) == (403, b"forbidden\n")
        refusals = refusals_json(s)
        assert len(refusals) == 1
        refusal = refusals[0]
        assert refusal["principal"] == "bob" and refusal["http_status"] == 403
        assert refusal["runtime_arn"] == TEST_ARN and refusal["client_address"]
        assert refusal["reason"] == "policy: default deny (no rule allows)"


async def test_first_start_writes_a_local_token_that_exec_uses_without_options(tmp_path: Path) -> None:
    with stack(tmp_path, "--auth", "token") as s:
        token_file = s.data_dir / LOCAL_TOKEN_FILE
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        env = {"RECORDER_DATA_DIR": str(s.data_dir)}
        done = run_recorder("exec", "--url", s.url, "--", "echo", "from-exec", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "from-exec\n"
        rows = s.finished(1)
        assert rows[0].principal == getpass.getuser()
        first = token_file.read_text()
    # A second start keeps the token that still works.
    with stack(tmp_path, "--auth", "token") as s:
        assert (s.data_dir / LOCAL_TOKEN_FILE).read_text() == first
        assert "created a token" not in s.proxy.text


def test_auth_none_is_refused_on_a_non_loopback_listen_address(tmp_path: Path) -> None:
    result = run_recorder("serve", "--listen", "0.0.0.0:0", "--auth", "none", "--data-dir", str(tmp_path))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "recorder: error: --auth none is only allowed on a loopback listen address, not 0.0.0.0"
    ]


def test_malformed_policy_is_a_one_line_error(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('[[allow]]\ngroups = ["ops"]\nrole = "x"\n')
    result = run_recorder(
        "serve", "--listen", "127.0.0.1:0", "--policy", str(policy), "--data-dir", str(tmp_path)
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1
    assert "allow[1]: unknown key(s) ['role']" in lines[0]


# -- JWT --------------------------------------------------------------------------------------------


def _jwks(path: Path, key: rsa.RSAPrivateKey, kid: str) -> None:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    path.write_text(json.dumps({"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}))


def _jwt(key: object, kid: str, **claims: object) -> str:
    now = int(time.time())
    base: dict[str, object] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "dana", "exp": now + 300, "iat": now}
    base.update(claims)
    return jwt.encode(
        base, key, algorithm="RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256", headers={"kid": kid}
    )  # type: ignore[arg-type]


async def test_jwt_mode_accepts_a_valid_token_and_rejects_bad_ones(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = tmp_path / "jwks.json"
    _jwks(jwks, key, "k1")
    args = ("--auth", "jwt", "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE, "--jwt-jwks", str(jwks))
    with stack(tmp_path, *args) as s:
        assert not (s.data_dir / LOCAL_TOKEN_FILE).exists()
        good = _jwt(key, "k1", groups=["ops"])
        assert await sdk_oauth_exit(s.url, good, 5) == 5
        rows = s.finished(1)
        assert rows[0].principal == "dana"
        bad = {
            "expired": _jwt(key, "k1", exp=int(time.time()) - 3600),
            "wrong audience": _jwt(key, "k1", aud="someone-else"),
            "wrong issuer": _jwt(key, "k1", iss="https://evil.example.test/"),
            "bad signature": _jwt(other, "k1"),
            "another key type": _jwt(ec.generate_private_key(ec.SECP256R1()), "k1"),
        }
        for what, token in bad.items():
            assert (await refused_status(s.url, token))[0] == 401, what
        reasons = [str(r["reason"]) for r in refusals_json(s)]
        assert len(reasons) == len(bad) and all("invalid JWT" in r for r in reasons)
