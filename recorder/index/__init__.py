"""The SQL index: models, the migration runner and the store API the proxy and auditor tools call."""

from __future__ import annotations

from recorder.index.db import current_revision, downgrade, head_revision, make_engine, upgrade
from recorder.index.models import ConnectionStatus, EndReason
from recorder.index.store import ConnectionFilter, ConnectionRow, Index, RefusalRow, ShellRow

__all__ = [
    "ConnectionFilter",
    "ConnectionRow",
    "ConnectionStatus",
    "EndReason",
    "Index",
    "RefusalRow",
    "ShellRow",
    "current_revision",
    "downgrade",
    "head_revision",
    "make_engine",
    "upgrade",
]
