"""The SQL index: models, the migration runner and the store API the proxy and auditor tools call."""

from __future__ import annotations

from recorder.index.db import current_revision, downgrade, head_revision, make_engine, upgrade
from recorder.index.models import ConnectionStatus, EndReason
from recorder.index.query import Query, parse_query
from recorder.index.rows import CommandRow, IndexedRow
from recorder.index.search import Hit, search
from recorder.index.store import ConnectionFilter, ConnectionRow, ImportRow, Index, RefusalRow, ShellRow

__all__ = [
    "CommandRow",
    "ConnectionFilter",
    "ConnectionRow",
    "ConnectionStatus",
    "EndReason",
    "Hit",
    "ImportRow",
    "Index",
    "IndexedRow",
    "Query",
    "RefusalRow",
    "ShellRow",
    "current_revision",
    "downgrade",
    "head_revision",
    "make_engine",
    "parse_query",
    "search",
    "upgrade",
]
