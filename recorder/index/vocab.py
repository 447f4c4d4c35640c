"""The index's words and limits that commands name without opening it, without SQLAlchemy.

``recorder.index.models`` stores the enums and ``recorder.index.store`` enforces the limits; the
auditor commands' options name them, and a command that never opens the index (``recorder search
--server``) must not load SQLAlchemy to parse its options.
"""

from __future__ import annotations

from enum import StrEnum

#: Rows a listing returns unless told otherwise, and the most it may be told.
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 10_000


class ConnectionStatus(StrEnum):
    """Where a connection is in its life."""

    ACTIVE = "active"
    ENDED = "ended"
    INTERRUPTED = "interrupted"


class EndReason(StrEnum):
    """Why a connection ended."""

    EXIT = "exit"
    CLIENT_CLOSED = "client-closed"
    CLIENT_DROPPED = "client-dropped"
    UPSTREAM_CLOSED = "upstream-closed"
    KICKED = "kicked"
    PROXY_SHUTDOWN = "proxy-shutdown"
    ERROR = "error"
    RECORD_FAILURE = "record-failure"
