"""Who is asking: bearer tokens from the index, JWTs (OIDC), and a limit on failed attempts.

Authenticators are synchronous (a database lookup, a JWKS fetch): the proxy calls them in a
worker thread. Each returns an :class:`Identity` or raises :class:`AuthenticationFailed`, whose
reason is for the log and the index, never for the client.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import jwt

from recorder.errors import AuthenticationFailed, ConfigError
from recorder.index.access import create_token, find_token
from recorder.index.store import Index
from recorder.protocol.bearer import token_from_authorization, token_from_subprotocols

#: Failed attempts from one address within FAILURE_WINDOW seconds before it is refused with 429.
MAX_FAILURES = 10
FAILURE_WINDOW = 60.0
#: How long an address that hit the limit is refused.
COOLDOWN = 60.0
#: Addresses the limiter remembers; past this the least recently failing are forgotten.
MAX_TRACKED_ADDRESSES = 10_000
#: Clock skew allowed on a JWT's exp / nbf / iat.
JWT_LEEWAY = 30.0
#: Algorithms a JWT may be signed with (asymmetric only: the proxy holds no shared secrets).
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
#: Seconds a JWKS fetched from a URL is cached.
JWKS_CACHE_SECONDS = 300
#: Largest JWKS file read.
MAX_JWKS_BYTES = 1024 * 1024
AUTH_MODES = ("token", "jwt", "none")


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller."""

    principal: str
    groups: tuple[str, ...] = ()


class Authenticator(Protocol):
    """Turns a bearer credential into an Identity, or raises AuthenticationFailed."""

    name: str

    def authenticate(self, token: str | None) -> Identity:
        """The caller's identity; AuthenticationFailed when ``token`` does not authenticate."""
        ...


def request_token(headers: Mapping[str, str], subprotocols: Iterable[str]) -> str | None:
    """The bearer token of an upgrade request: ``Authorization: Bearer`` first, then the subprotocol."""
    return token_from_authorization(headers.get("Authorization")) or token_from_subprotocols(subprotocols)


class TokenAuthenticator:
    """Tokens made by ``recorder token create`` (only their SHA-256 is in the index)."""

    name = "token"

    def __init__(self, index: Index, clock: Callable[[], datetime] | None = None) -> None:
        self.index = index
        self._clock = clock or (lambda: datetime.now(UTC))

    def authenticate(self, token: str | None) -> Identity:
        """The token's principal and groups, if the token is known, unexpired and not revoked."""
        if not token:
            raise AuthenticationFailed("no credentials")
        row = find_token(self.index, token)
        if row is None:
            raise AuthenticationFailed("unknown token")
        state = row.state(self._clock())
        if state != "active":
            raise AuthenticationFailed(f"{state} token {row.id}", row.principal)
        return Identity(row.principal, row.groups)


class JwtAuthenticator:
    """JWTs from an OIDC issuer: signature (JWKS file or URL), issuer, audience, expiry."""

    name = "jwt"

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: str,
        principal_claim: str = "sub",
        groups_claim: str = "groups",
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.principal_claim = principal_claim
        self.groups_claim = groups_claim
        self._client: jwt.PyJWKClient | None = None
        self._keys: jwt.PyJWKSet | None = None
        if jwks.startswith(("https://", "http://")):
            self._client = jwt.PyJWKClient(jwks, cache_jwk_set=True, lifespan=JWKS_CACHE_SECONDS)
        else:
            self._keys = load_jwks(Path(jwks))

    def _key(self, token: str) -> jwt.PyJWK:
        # A PyJWK (not its bare key) makes PyJWT check the token's alg against the key's type.
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token)
        assert self._keys is not None
        kid = jwt.get_unverified_header(token).get("kid")
        keys = [k for k in self._keys.keys if kid is None or k.key_id == kid]
        if len(keys) != 1:
            raise AuthenticationFailed(f"no single JWKS key for kid {kid!r}")
        return keys[0]

    def authenticate(self, token: str | None) -> Identity:
        """The principal and groups from a valid JWT's claims."""
        if not token:
            raise AuthenticationFailed("no credentials")
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=list(JWT_ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                leeway=JWT_LEEWAY,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise AuthenticationFailed(f"invalid JWT: {exc}") from None
        principal = claims.get(self.principal_claim)
        if not isinstance(principal, str) or not principal:
            raise AuthenticationFailed(f"JWT has no string claim {self.principal_claim!r}")
        raw = claims.get(self.groups_claim, [])
        groups = (raw,) if isinstance(raw, str) else tuple(g for g in raw if isinstance(g, str))
        return Identity(principal, groups)


def load_jwks(path: Path) -> jwt.PyJWKSet:
    """A JWKS JSON file; a missing or malformed one is a one-line ConfigError."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read JWKS file {path}: {exc.strerror}") from None
    if len(data) > MAX_JWKS_BYTES:
        raise ConfigError(f"JWKS file {path} exceeds {MAX_JWKS_BYTES} bytes")
    try:
        return jwt.PyJWKSet.from_dict(json.loads(data))
    except (ValueError, jwt.PyJWTError) as exc:
        raise ConfigError(f"JWKS file {path} is not a usable key set: {exc}") from None


class RateLimiter:
    """Refuses an address for COOLDOWN seconds after MAX_FAILURES failures within FAILURE_WINDOW."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        cooldown: float = COOLDOWN,
        *,
        max_tracked: int = MAX_TRACKED_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window <= 0 or cooldown <= 0 or max_tracked < 1:
            raise ConfigError("rate limits must be positive")
        self.max_failures = max_failures
        self.window = window
        self.cooldown = cooldown
        self.max_tracked = max_tracked
        self._clock = clock
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._blocked: dict[str, float] = {}

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None when it is not blocked."""
        until = self._blocked.get(address)
        if until is None:
            return None
        left = until - self._clock()
        if left <= 0:
            del self._blocked[address]
            return None
        return left

    def failure(self, address: str) -> bool:
        """Count a failed attempt; True when this one put the address in its cool-down."""
        now = self._clock()
        recent = [t for t in self._failures.pop(address, []) if now - t < self.window]
        recent.append(now)
        if len(recent) >= self.max_failures:
            self._blocked[address] = now + self.cooldown
            return True
        self._failures[address] = recent
        while len(self._failures) > self.max_tracked:
            self._failures.popitem(last=False)
        if len(self._blocked) > self.max_tracked:
            self._blocked = {a: u for a, u in self._blocked.items() if u > now}
        return False


def is_loopback_host(host: str) -> bool:
    """Whether a listen host only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def ensure_local_token(index: Index, path: Path, principal: str) -> bool:
    """Make sure ``path`` (mode 0600) holds an active token for ``principal``; True when one was made."""
    try:
        current = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        current = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the local token file {path}: {exc}") from None
    if current:
        row = find_token(index, current)
        if row is not None and row.principal == principal and row.state(datetime.now(UTC)) == "active":
            os.chmod(path, 0o600)
            return False
    _row, token = create_token(index, principal, ttl=None)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the local token file {path}: {exc.strerror}") from None
    return True
