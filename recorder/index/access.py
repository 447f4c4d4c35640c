"""Access tokens for the proxy and the audit log of auditor commands, in the index database.

A token is ``rec_<id>_<secret>``: ``id`` (hex, public) is how it is looked up, ``secret`` is
``secrets.token_urlsafe(32)`` (256 bits). Only the SHA-256 of the whole token is stored. A fast
hash is enough for a random 256-bit secret (nothing to brute-force), and looking the row up by
the public id, then comparing digests with ``hmac.compare_digest``, keeps the secret part out of
any data-dependent database lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from recorder.errors import ConfigError, IndexStoreError
from recorder.index.models import (
    MAX_AUDIT_COMMAND,
    MAX_AUDIT_TEXT,
    MAX_GROUPS_TEXT,
    MAX_PRINCIPAL,
    TOKEN_ID_LENGTH,
    AccessToken,
    AuditEntry,
)
from recorder.index.store import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, Index

#: What every token starts with, so a leaked one is recognisable (secret scanners, logs).
TOKEN_PREFIX = "rec_"
#: Bytes of randomness in a token's secret part.
TOKEN_SECRET_BYTES = 32
#: Longest lifetime ``create_token`` accepts (``None`` means no expiry, for the local token).
MAX_TOKEN_TTL = timedelta(days=366)
_TOKEN_RE = re.compile(rf"{TOKEN_PREFIX}([0-9a-f]{{{TOKEN_ID_LENGTH}}})_[A-Za-z0-9_-]{{20,128}}\Z")
_GROUP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}\Z")


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A token as the index holds it (never the token itself)."""

    id: str
    principal: str
    groups: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    sha256: str

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit-log entry."""

    id: int
    at: datetime
    actor: str
    command: str
    arguments: dict[str, Any]
    targets: list[str]


def token_digest(token: str) -> str:
    """SHA-256 (hex) of a token, the only form it is stored in."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id(token: str) -> str | None:
    """The public id of a well-formed token, or None for anything else."""
    match = _TOKEN_RE.match(token)
    return match.group(1) if match else None


def check_groups(groups: Sequence[str]) -> tuple[str, ...]:
    """Group names, checked: letters, digits and ``._:@/-``, at most 128 characters each."""
    for group in groups:
        if not _GROUP_RE.match(group):
            raise ConfigError(f"invalid group name {group!r}: use letters, digits and ._:@/- (max 128)")
    return tuple(dict.fromkeys(groups))


def _token_row(row: AccessToken) -> TokenRow:
    return TokenRow(
        id=row.id,
        principal=row.principal,
        groups=tuple(json.loads(row.groups)),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        sha256=row.sha256,
    )


def create_token(
    index: Index,
    principal: str,
    groups: Sequence[str] = (),
    ttl: timedelta | None = None,
    *,
    now: datetime | None = None,
) -> tuple[TokenRow, str]:
    """A new token for ``principal``: its row and the token itself (shown once, never stored)."""
    if not principal or len(principal) > MAX_PRINCIPAL or not principal.isprintable():
        raise ConfigError(f"the principal must be 1 to {MAX_PRINCIPAL} printable characters")
    checked = check_groups(groups)
    groups_text = json.dumps(list(checked))
    if len(groups_text) > MAX_GROUPS_TEXT:
        raise ConfigError(f"groups take {len(groups_text)} characters; at most {MAX_GROUPS_TEXT}")
    if ttl is not None and not timedelta(0) < ttl <= MAX_TOKEN_TTL:
        raise ConfigError(f"the token lifetime must be more than 0 and at most {MAX_TOKEN_TTL.days} days")
    created = now or datetime.now(UTC)
    public = secrets.token_hex(TOKEN_ID_LENGTH // 2)
    token = f"{TOKEN_PREFIX}{public}_{secrets.token_urlsafe(TOKEN_SECRET_BYTES)}"
    row = AccessToken(
        id=public,
        principal=principal,
        groups=groups_text,
        created_at=created,
        expires_at=None if ttl is None else created + ttl,
        revoked_at=None,
        sha256=token_digest(token),
    )
    with index.session() as session:
        session.add(row)
        session.flush()
        return _token_row(row), token


def find_token(index: Index, token: str) -> TokenRow | None:
    """The row of ``token`` when it is well formed, known and its digest matches (any state), else None."""
    public = token_id(token)
    if public is None:
        return None
    with index.reading() as session:
        row = session.get(AccessToken, public)
        found = None if row is None else _token_row(row)
    if found is None or not hmac.compare_digest(found.sha256, token_digest(token)):
        return None
    return found


def list_tokens(index: Index) -> list[TokenRow]:
    """Every token row, newest first."""
    with index.reading() as session:
        rows = session.scalars(sa.select(AccessToken).order_by(AccessToken.created_at.desc()))
        return [_token_row(r) for r in rows]


def revoke_token(index: Index, public_id: str, *, now: datetime | None = None) -> TokenRow:
    """Revoke a token by its public id; revoking twice keeps the first time."""
    with index.session() as session:
        row = session.get(AccessToken, public_id)
        if row is None:
            raise ConfigError(f"no token {public_id!r} (see `recorder token list`)")
        if row.revoked_at is None:
            row.revoked_at = now or datetime.now(UTC)
        session.flush()
        return _token_row(row)


# -- the audit log --------------------------------------------------------------------------------


def _clip_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) > MAX_AUDIT_TEXT:
        # Keep the entry (who looked at what matters more than every argument); say it was cut.
        text = json.dumps({"clipped": text[: MAX_AUDIT_TEXT - 64]})
    return text


def record_audit(
    index: Index,
    *,
    actor: str,
    command: str,
    arguments: Mapping[str, Any],
    targets: Sequence[str],
    at: datetime | None = None,
) -> int:
    """Append one audit-log entry; raise IndexStoreError when it cannot be written."""
    row = AuditEntry(
        at=at or datetime.now(UTC),
        actor=actor[:MAX_PRINCIPAL],
        command=command[:MAX_AUDIT_COMMAND],
        arguments=_clip_json(dict(arguments)),
        targets=_clip_json(list(targets)),
    )
    with index.session() as session:
        session.add(row)
        session.flush()
        return row.id


def list_audit(
    index: Index,
    *,
    since: datetime | None = None,
    actor: str | None = None,
    limit: int = DEFAULT_LIST_LIMIT,
) -> list[AuditRow]:
    """Audit-log entries, newest first."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ConfigError(f"limit must be between 1 and {MAX_LIST_LIMIT}, not {limit}")
    query = sa.select(AuditEntry)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    query = query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    with index.reading() as session:
        out = []
        for r in session.scalars(query):
            try:
                args, targets = json.loads(r.arguments), json.loads(r.targets)
            except ValueError:
                raise IndexStoreError(f"audit-log entry {r.id} is not valid JSON") from None
            out.append(AuditRow(r.id, r.at, r.actor, r.command, args, targets))
        return out
