"""The shell endpoint's URL: /runtimes/<url-encoded ARN>/ws/shells?qualifier=&shellId=."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from recorder.errors import InvalidPath, ProtocolError
from recorder.protocol.ids import (
    RuntimeArn,
    validate_qualifier,
    validate_session_id,
    validate_shell_id,
)

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
SHELL_ID_HEADER = "X-Amzn-Bedrock-AgentCore-Shell-Id"
_PATH_RE = re.compile(r"/runtimes/([^/]+)/ws/shells/?\Z")
#: Longest request target accepted (path plus query).
MAX_TARGET_LENGTH = 8192
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def shell_path(arn: RuntimeArn | str) -> str:
    """The path for a runtime's shell endpoint."""
    return f"/runtimes/{quote(str(arn), safe='')}/ws/shells"


@dataclass(frozen=True, slots=True)
class ShellRequest:
    """What a client asked for: which runtime, endpoint, shell and runtime session."""

    arn: RuntimeArn
    qualifier: str | None = None
    shell_id: str | None = None
    session_id: str | None = None

    def target(self, *, session_in_query: bool = False) -> str:
        """The request target (path and query) for this request."""
        params: list[tuple[str, str]] = []
        if self.qualifier:
            params.append(("qualifier", self.qualifier))
        if self.shell_id:
            params.append(("shellId", self.shell_id))
        if session_in_query and self.session_id:
            params.append((SESSION_HEADER, self.session_id))
        path = shell_path(self.arn)
        return f"{path}?{urlencode(params)}" if params else path


def parse_target(target: str, headers: Mapping[str, str] | None = None) -> ShellRequest:
    """Parse a request target (and the session-id header) into a validated ShellRequest."""
    if len(target) > MAX_TARGET_LENGTH:
        raise InvalidPath(f"request target longer than {MAX_TARGET_LENGTH} characters")
    split = urlsplit(target)
    match = _PATH_RE.match(split.path)
    if not match:
        raise InvalidPath(f"no shell endpoint at {split.path!r}: expected /runtimes/<arn>/ws/shells")
    arn = RuntimeArn.parse(unquote(match.group(1)))
    try:
        query = dict(parse_qsl(split.query, keep_blank_values=True, strict_parsing=False))
    except ValueError as exc:
        raise ProtocolError(f"bad query string: {exc}") from None
    qualifier = query.get("qualifier") or None
    shell_id = query.get("shellId") or None
    session_id = None
    if headers is not None:
        session_id = headers.get(SESSION_HEADER) or None
    if session_id is None:
        session_id = query.get(SESSION_HEADER) or None
    if qualifier is not None:
        validate_qualifier(qualifier)
    if shell_id is not None:
        validate_shell_id(shell_id)
    if session_id is not None:
        validate_session_id(session_id)
    return ShellRequest(arn=arn, qualifier=qualifier, shell_id=shell_id, session_id=session_id)


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is a loopback name or address."""
    host = urlsplit(url).hostname or ""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
