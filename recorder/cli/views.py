"""What the auditor commands share: options, opening the index, filters, and how rows are shown.

Text from recordings is attacker-controlled: control characters are made visible before it
reaches the auditor's terminal, and it is never read as rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from recorder.cli.common import data_dir, db_url, fail, visible
from recorder.errors import RecorderError
from recorder.index.hits import Hit
from recorder.index.timespec import parse_time
from recorder.index.vocab import ConnectionStatus

if TYPE_CHECKING:
    # Not at run time: SQLAlchemy is 200-300 ms of start-up that `recorder search --server` and
    # `recorder --help` never need; the functions that open the index import it themselves.
    from recorder.index.store import ConnectionFilter, ConnectionRow, Index, RefusalRow

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")]

# Filters shared by `list` and `search`.
PrincipalOption = Annotated[str | None, typer.Option(help="Only this principal.")]
RuntimeOption = Annotated[
    str | None, typer.Option(help="Runtime ARN glob (* and ?), e.g. '*:runtime/prod-*'.")
]
SinceOption = Annotated[
    str | None, typer.Option(help="Started at or after: 30m, 24h, 7d, or a date/time (UTC unless given).")
]
UntilOption = Annotated[str | None, typer.Option(help="Started before: same forms as --since.")]
ExitCodeOption = Annotated[int | None, typer.Option("--exit-code", help="Only this exit code.")]
FailedOption = Annotated[
    bool, typer.Option(help="Only failures: non-zero exit, error, recording failure, interrupted.")
]
StatusOption = Annotated[ConnectionStatus | None, typer.Option(help="Only this status.")]
ShellOption = Annotated[str | None, typer.Option("--shell", help="Only this shellId.")]

#: Width of tables written to a pipe or file: rows stay whole lines for grep, never wrapped at 80.
PIPE_WIDTH = 1000


@dataclass(frozen=True, slots=True)
class FilterArgs:
    """The filter options as typed."""

    principal: str | None = None
    runtime: str | None = None
    since: str | None = None
    until: str | None = None
    exit_code: int | None = None
    failed: bool = False
    status: ConnectionStatus | None = None
    shell: str | None = None

    def to_filter(self, limit: int, now: datetime | None = None) -> ConnectionFilter:
        """The ConnectionFilter these options ask for; bad values raise ConfigError."""
        from recorder.index.store import ConnectionFilter

        now = now or datetime.now(UTC)
        return ConnectionFilter(
            principal=self.principal,
            runtime=self.runtime,
            since=None if self.since is None else parse_time(self.since, now=now, what="--since"),
            until=None if self.until is None else parse_time(self.until, now=now, what="--until"),
            exit_code=self.exit_code,
            failed=self.failed,
            status=self.status,
            shell_id=self.shell,
            limit=limit,
        )


def open_index(data: Path | None, db: str | None) -> Index:
    """The index for reading, at the newest revision; a missing or old index is a one-line error."""
    from recorder.index.db import current_revision, head_revision, make_engine, normalise_url, safe_url
    from recorder.index.store import Index

    directory = data_dir(data)
    url = db_url(db, directory)
    try:
        parsed = normalise_url(url)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not Path(database).expanduser().exists():
                raise fail(
                    f"no index at {database}: nothing recorded yet "
                    "(run `recorder serve` or `recorder import`)"
                )
        engine = make_engine(url)
        revision = current_revision(engine)
        if revision != head_revision():
            engine.dispose()
            at = revision or "empty"
            raise fail(f"the index at {safe_url(url)} is at revision {at}: run `recorder db upgrade`")
        return Index(engine)
    except RecorderError as exc:
        raise fail(str(exc)) from None


def console() -> Console:
    """Where tables go: the terminal's width on a terminal, one line per row otherwise."""
    out = Console(soft_wrap=False, highlight=False)
    if out.is_terminal:
        return out
    return Console(soft_wrap=False, highlight=False, width=PIPE_WIDTH)


def format_offset(seconds: float) -> str:
    """Seconds as ``mm:ss`` (``h:mm:ss`` from an hour on), rounded down so ``--at`` lands just before."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_duration(seconds: float | None) -> str:
    """A duration as ``1h02m03s``, ``2m05s`` or ``4.2s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def format_time(value: datetime | None) -> str:
    """A UTC time to the second, ``-`` when absent."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def play_command(conn_id: int, offset: float) -> str:
    """The command that replays a connection from just before ``offset``."""
    return f"recorder play {conn_id} --at {format_offset(offset)}"


def highlight(text: str, spans: Sequence[tuple[int, int]], style: str = "bold reverse") -> Text:
    """``text`` (made visible) with ``spans`` styled; never parsed as markup."""
    shown = Text(visible(text))
    for start, end in spans:
        shown.stylize(style, start, end)
    return shown


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def connection_json(row: ConnectionRow) -> dict[str, Any]:
    """A connection as a JSON object."""
    return {
        "id": row.id,
        "principal": row.principal,
        "client_address": row.client_address,
        "runtime_arn": row.runtime_arn,
        "qualifier": row.qualifier,
        "session_id": row.session_id,
        "shell_id": row.shell_id,
        "upstream": row.upstream,
        "started_at": _iso(row.started_at),
        "ended_at": _iso(row.ended_at),
        "duration": row.duration,
        "status": row.status.value,
        "end_reason": None if row.end_reason is None else row.end_reason.value,
        "exit_code": row.exit_code,
        "close_code": row.close_code,
        "recording_path": row.recording_path,
        "recording_size": row.recording_size,
        "sha256": row.sha256,
        "cast_version": row.cast_version,
        "cols": row.cols,
        "rows": row.rows,
        "reconnected": row.reconnected,
        "bytes_dropped": row.bytes_dropped,
        "invalid_utf8": row.invalid_utf8,
        "counters": dict(row.counters),
    }


def refusal_json(row: RefusalRow) -> dict[str, Any]:
    """A refused attempt as a JSON object."""
    return {
        "id": row.id,
        "at": _iso(row.at),
        "principal": row.principal,
        "client_address": row.client_address,
        "runtime_arn": row.runtime_arn,
        "qualifier": row.qualifier,
        "session_id": row.session_id,
        "shell_id": row.shell_id,
        "http_status": row.http_status,
        "reason": row.reason,
    }


def hit_json(hit: Hit) -> dict[str, Any]:
    """A search hit as a JSON object (``offset`` in seconds, ``spans`` as [start, end] pairs)."""
    return {
        "id": hit.connection_id,
        "kind": hit.kind,
        "offset": hit.offset,
        "at": format_offset(hit.offset),
        "text": hit.text,
        "exit_code": hit.exit_code,
        "principal": hit.principal,
        "shell_id": hit.shell_id,
        "runtime_arn": hit.runtime_arn,
        "started_at": _iso(hit.started_at),
        "spans": [list(span) for span in hit.spans],
        "play": play_command(hit.connection_id, hit.offset),
    }


def json_line(obj: dict[str, Any]) -> str:
    """One JSON object on one line (non-ASCII kept, control characters escaped by JSON)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
