"""A search hit, and how it travels: sans I/O and without SQLAlchemy.

``recorder.index.search`` makes hits from the index; the proxy's search endpoint sends them as
JSON lines (:func:`hit_to_wire`); ``recorder search --server`` reads them back
(:func:`hit_from_wire`) and shows them as a local search does. This module imports only the
standard library, so that a remote search's client starts without the index's dependencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from recorder.errors import ProtocolError

#: What can be searched, in the order hits at the same moment are listed.
KINDS: tuple[str, ...] = ("command", "output", "input")
#: Hits returned unless told otherwise.
DEFAULT_SEARCH_LIMIT = 50
RANK = {kind: i for i, kind in enumerate(KINDS)}
#: Bounds of a hit's numbers as the index stores them (64-bit integers; offsets within a century).
MAX_INT = 2**63 - 1
MAX_OFFSET = 100 * 366 * 86400.0


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching row: where (connection, seconds from its start), what, and who."""

    connection_id: int
    kind: str
    offset: float
    text: str
    #: The command's exit code (commands only; None when unknown).
    exit_code: int | None
    principal: str | None
    shell_id: str
    runtime_arn: str
    started_at: datetime
    #: ``(start, end)`` character ranges of ``text`` that matched, sorted and merged.
    spans: tuple[tuple[int, int], ...]
    #: Order of the row within its connection and kind (a tie-breaker).
    seq: int

    def sort_key(self) -> tuple[float, int, float, int, int]:
        """Newest connection first, then time order, then kind, then row order."""
        return (-self.started_at.timestamp(), -self.connection_id, self.offset, RANK[self.kind], self.seq)


def hit_to_wire(hit: Hit) -> dict[str, Any]:
    """A hit as the search endpoint sends it: every field, ``started_at`` in ISO 8601."""
    return {
        "id": hit.connection_id,
        "kind": hit.kind,
        "offset": hit.offset,
        "text": hit.text,
        "exit_code": hit.exit_code,
        "principal": hit.principal,
        "shell_id": hit.shell_id,
        "runtime_arn": hit.runtime_arn,
        "started_at": hit.started_at.isoformat(),
        "spans": [list(span) for span in hit.spans],
        "seq": hit.seq,
    }


def hit_from_wire(obj: object) -> Hit:
    """The hit :func:`hit_to_wire` sent; ProtocolError naming the field when it is not one."""
    if not isinstance(obj, dict):
        raise ProtocolError("a search hit is not a JSON object")
    try:
        hit = Hit(
            connection_id=_typed(obj, "id", int),
            kind=_typed(obj, "kind", str),
            offset=float(_typed(obj, "offset", (int, float))),
            text=_typed(obj, "text", str),
            exit_code=_typed(obj, "exit_code", int, optional=True),
            principal=_typed(obj, "principal", str, optional=True),
            shell_id=_typed(obj, "shell_id", str),
            runtime_arn=_typed(obj, "runtime_arn", str),
            started_at=datetime.fromisoformat(_typed(obj, "started_at", str)),
            spans=tuple(_span(s) for s in _typed(obj, "spans", list)),
            seq=_typed(obj, "seq", int),
        )
    except ValueError as exc:
        raise ProtocolError(f"a search hit has a bad field: {exc}") from None
    if hit.kind not in RANK:
        raise ProtocolError(f"a search hit has an unknown kind {hit.kind!r}")
    if hit.started_at.tzinfo is None:
        raise ProtocolError("a search hit's started_at has no time zone")
    try:
        hit.started_at.astimezone(UTC).timestamp()  # what listing and sorting do with it
    except (OverflowError, ValueError):
        raise ProtocolError(
            f"a search hit's started_at is out of range: {hit.started_at.isoformat()}"
        ) from None
    if not (math.isfinite(hit.offset) and 0 <= hit.offset <= MAX_OFFSET):
        raise ProtocolError(f"a search hit's offset is out of range: {hit.offset!r}")
    for name, value in (("id", hit.connection_id), ("seq", hit.seq)):
        if not 0 <= value <= MAX_INT:
            raise ProtocolError(f"a search hit's {name} is out of range: {value}")
    if hit.exit_code is not None and not -MAX_INT <= hit.exit_code <= MAX_INT:
        raise ProtocolError(f"a search hit's exit_code is out of range: {hit.exit_code}")
    last = 0
    for start, end in hit.spans:
        if not last <= start <= end <= len(hit.text):
            raise ProtocolError(f"a search hit's spans are not sorted ranges of its text: {[start, end]}")
        last = end
    return hit


def _typed(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    # bool is an int to isinstance, never a number here.
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{key} is {value!r}")
    return value


def _span(value: object) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"spans holds {value!r}")
    return (value[0], value[1])
