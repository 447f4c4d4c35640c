"""Identifiers: runtime ARNs, shell ids, runtime session ids, qualifiers."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from recorder.errors import InvalidArn, InvalidShellId, ProtocolError

# \Z, not $: $ also matches before a trailing newline.
SHELL_ID_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,127}\Z")
_PARTITION_RE = re.compile(r"aws(-[a-z]+)*\Z")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}\Z")
_ACCOUNT_RE = re.compile(r"\d{12}\Z")
_RUNTIME_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}\Z")
_QUALIFIER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}\Z")
# Printable ASCII, no spaces: safe in a header, a query string and a log line.
_SESSION_ID_RE = re.compile(r"[\x21-\x7e]{1,256}\Z")

DEFAULT_QUALIFIER = "DEFAULT"
#: The ARN the local tools use when none is given.
LOCAL_RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:000000000000:runtime/local"


class InvalidSessionId(ProtocolError):
    """A runtime session id outside 1-256 printable ASCII characters."""


class InvalidQualifier(ProtocolError):
    """A qualifier (endpoint name) outside the allowed pattern."""


@dataclass(frozen=True, slots=True)
class RuntimeArn:
    """arn:<partition>:bedrock-agentcore:<region>:<account>:runtime/<id>."""

    partition: str
    region: str
    account: str
    runtime_id: str

    def __str__(self) -> str:
        return (
            f"arn:{self.partition}:bedrock-agentcore:{self.region}:{self.account}:runtime/{self.runtime_id}"
        )

    @classmethod
    def parse(cls, text: str) -> RuntimeArn:
        """Parse and validate a runtime ARN."""
        if not isinstance(text, str) or len(text) > 2048:
            raise InvalidArn("runtime ARN must be a string of at most 2048 characters")
        parts = text.split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "bedrock-agentcore":
            raise InvalidArn(f"not a bedrock-agentcore runtime ARN: {text!r}")
        _, partition, _, region, account, resource = parts
        kind, _, runtime_id = resource.partition("/")
        if kind != "runtime":
            raise InvalidArn(f"ARN resource must be runtime/<id>: {text!r}")
        if not _PARTITION_RE.match(partition):
            raise InvalidArn(f"bad partition {partition!r} in ARN")
        if not _REGION_RE.match(region):
            raise InvalidArn(f"bad region {region!r} in ARN")
        if not _ACCOUNT_RE.match(account):
            raise InvalidArn(f"bad account {account!r} in ARN (12 digits)")
        if not _RUNTIME_ID_RE.match(runtime_id):
            raise InvalidArn(f"bad runtime id {runtime_id!r} in ARN")
        return cls(partition, region, account, runtime_id)


def validate_shell_id(shell_id: str) -> str:
    """Return ``shell_id`` when it matches ^[a-zA-Z0-9][a-zA-Z0-9_-]{0,127}$."""
    if not isinstance(shell_id, str) or not SHELL_ID_RE.match(shell_id):
        raise InvalidShellId(
            f"invalid shellId {shell_id!r}: 1-128 characters, a letter or digit first, then letters, "
            "digits, '-' or '_'"
        )
    return shell_id


def validate_session_id(session_id: str) -> str:
    """Return ``session_id`` when it is 1-256 printable ASCII characters without spaces."""
    if not isinstance(session_id, str) or not _SESSION_ID_RE.match(session_id):
        raise InvalidSessionId(f"invalid runtime session id {session_id!r}: 1-256 printable ASCII characters")
    return session_id


def validate_qualifier(qualifier: str) -> str:
    """Return ``qualifier`` when it is a valid endpoint name."""
    if not isinstance(qualifier, str) or not _QUALIFIER_RE.match(qualifier):
        raise InvalidQualifier(f"invalid qualifier {qualifier!r}")
    return qualifier


def new_shell_id() -> str:
    """A fresh shell id, as the SDK makes them."""
    return str(uuid.uuid4())


def new_session_id() -> str:
    """A fresh runtime session id, as the SDK makes them."""
    return str(uuid.uuid4())
