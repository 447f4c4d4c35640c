"""The proxy's search endpoint (``recorder.protocol.search``): auditors search the index it holds.

A ``recorder search`` process spends most of its half second starting up (SQLAlchemy alone is
200-300 ms of imports on this project's machine) and then searches in 1-3 ms. The proxy already
holds the index open, so ``recorder search --server`` sends the search here and only prints.
It is also the only way for an auditor without the index's database credentials.

Who may search: the principals and groups the proxy was started with as auditors; nobody when it
names none, and never an unauthenticated caller (``--auth none`` has no principal to log). Every
search is written to the index's audit log, under the authenticated principal and with the
client's address, before it runs; when the entry cannot be written the search does not run (503).
Searches run one at a time in their own thread, off the event loop; at most
:data:`MAX_QUEUED_SEARCHES` wait, and the next is refused with 503 and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from recorder.errors import ProtocolError, RecorderError
from recorder.index.access import record_audit
from recorder.index.hits import DEFAULT_SEARCH_LIMIT, Hit, hit_to_wire
from recorder.index.query import Query, parse_query
from recorder.index.search import MAX_SEARCH_LIMIT, search
from recorder.index.store import MAX_LIST_LIMIT, ConnectionFilter, Index
from recorder.index.timespec import parse_time
from recorder.index.vocab import ConnectionStatus
from recorder.logfmt import get_logger
from recorder.protocol.search import CONTENT_TYPE, MAX_ANSWER_BYTES, WHERE, parse_search_target

log = get_logger(__name__)

#: Searches waiting for the search thread (besides the one running) before the next gets 503.
MAX_QUEUED_SEARCHES = 8
#: Seconds a search may wait for its turn before it is dropped unrun (503): less than the proxy's
#: 30 s handshake timeout, after which its caller is gone.
QUEUE_DEADLINE = 20.0
#: Seconds a client refused with 503 for a full queue is told to wait.
BUSY_RETRY_AFTER = 1
#: The audit log's name for a search (the same as ``recorder search``'s own entries).
AUDIT_COMMAND = "search"
#: The names `recorder search`'s own audit entries give the parameters that it names differently.
_AUDIT_NAMES = {"q": "query", "in": "where"}
_WHOLE = re.compile(r"-?[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class Auditors:
    """Who may search: these principals, and every member of these groups."""

    principals: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    @classmethod
    def of(cls, principals: Iterable[str] = (), groups: Iterable[str] = ()) -> Auditors:
        return cls(frozenset(principals), frozenset(groups))

    def __bool__(self) -> bool:
        return bool(self.principals or self.groups)

    def admit(self, principal: str | None, groups: Iterable[str]) -> bool:
        """Whether this caller is an auditor (an unauthenticated caller never is)."""
        if principal is None:
            return False
        return principal in self.principals or not self.groups.isdisjoint(groups)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the endpoint answers: an HTTP status, the body, and its media type."""

    status: int
    body: str | bytes
    content_type: str = "text/plain; charset=utf-8"
    retry_after: int | None = None
    #: Hits found but left out, because the answer would have been over MAX_ANSWER_BYTES.
    cut: int = 0

    def encoded(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else self.body.encode()


class BadRequest(RecorderError):
    """The request's parameters or query are wrong: a 400 saying why."""


class SearchService:
    """Runs auditors' searches on the proxy's index, logging each first."""

    def __init__(
        self,
        index: Index,
        auditors: Auditors,
        *,
        max_queued: int = MAX_QUEUED_SEARCHES,
        queue_deadline: float = QUEUE_DEADLINE,
    ) -> None:
        self.index = index
        self.auditors = auditors
        self.max_queued = max_queued
        self.queue_deadline = queue_deadline
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search")
        # Searches taken and not finished by the thread (queued or running), whether or not their
        # callers still wait: a caller that gives up does not stop a running search.
        self._in_flight = 0
        self._count = threading.Lock()
        self._closed = False

    async def answer(self, target: str, principal: str, client_address: str) -> Answer:
        """Search for an authenticated auditor; the caller has checked :meth:`Auditors.admit`."""
        if self._closed:
            return Answer(503, "proxy is shutting down\n")
        try:
            params = parse_search_target(target)
        except ProtocolError as exc:
            return Answer(400, f"{exc}\n")
        with self._count:
            busy = self._in_flight > self.max_queued
            if not busy:
                self._in_flight += 1
        if busy:
            log.warning("search.busy", principal=principal, client=client_address)
            return Answer(503, "too many searches waiting; try again shortly\n", retry_after=BUSY_RETRY_AFTER)
        taken = time.monotonic()
        try:
            job = self._thread.submit(self._run, params, principal, client_address, taken)
        except RuntimeError:  # closed between the check and here
            self._finished(None)
            return Answer(503, "proxy is shutting down\n")
        job.add_done_callback(self._finished)
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            if job.cancelled() and self._closed:
                return Answer(503, "proxy is shutting down\n")
            raise

    def close(self) -> None:
        """Stop taking searches and drop the queued ones; one already running finishes in its thread."""
        self._closed = True
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _finished(self, _job: object) -> None:
        with self._count:
            self._in_flight -= 1

    def _run(self, params: dict[str, str], principal: str, client_address: str, taken: float) -> Answer:
        waited = time.monotonic() - taken
        if waited > self.queue_deadline:
            # Its caller's handshake may have timed out meanwhile: nobody to answer, nothing run.
            log.warning("search.expired", principal=principal, client=client_address, waited=round(waited, 1))
            return Answer(
                503, "the search waited too long for its turn; try again\n", retry_after=BUSY_RETRY_AFTER
            )
        try:
            query, kinds, filters, limit = _request(params, datetime.now(UTC))
        except RecorderError as exc:  # BadRequest, QueryError, ConfigError: what the request got wrong
            return Answer(400, f"{exc}\n")
        # Named and typed as `recorder search` logs them itself, plus where the search came from.
        arguments: dict[str, Any] = {_AUDIT_NAMES.get(k, k): v for k, v in params.items()}
        arguments.update(limit=limit, via="proxy", client_address=client_address)
        if "failed" in arguments:
            arguments["failed"] = True
        if filters.exit_code is not None:
            arguments["exit_code"] = filters.exit_code
        try:
            record_audit(self.index, actor=principal, command=AUDIT_COMMAND, arguments=arguments, targets=[])
        except RecorderError as exc:
            log.error("search.audit_failed", principal=principal, error=str(exc))
            return Answer(503, "the audit log cannot be written; the search did not run\n")
        try:
            hits = search(self.index, query, kinds=kinds, filters=filters, limit=limit)
        except RecorderError as exc:
            log.error("search.failed", principal=principal, error=str(exc))
            return Answer(503, f"the search failed: {exc}\n")
        body, sent = _ndjson(hits)
        log.info("search.answered", principal=principal, client=client_address, hits=sent, found=len(hits))
        return Answer(200, body, CONTENT_TYPE, cut=len(hits) - sent)


def _ndjson(hits: list[Hit]) -> tuple[bytes, int]:
    """The hits as JSON lines, as many as fit in MAX_ANSWER_BYTES, and how many those are."""
    lines: list[bytes] = []
    size = 0
    for hit in hits:
        line = json.dumps(hit_to_wire(hit), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        if size + len(line) > MAX_ANSWER_BYTES:
            break
        lines.append(line)
        size += len(line)
    return b"".join(lines), len(lines)


def _request(params: dict[str, str], now: datetime) -> tuple[Query, tuple[str, ...], ConnectionFilter, int]:
    """The parsed query, kinds, connection filter and limit a request asks for; BadRequest if bad."""
    query = parse_query(params["q"])
    limit = _int(params, "limit", DEFAULT_SEARCH_LIMIT)
    if not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_SEARCH_LIMIT}, not {limit}")
    status = params.get("status")
    try:
        state = None if status is None else ConnectionStatus(status)
    except ValueError:
        raise BadRequest(
            f"status must be one of {', '.join(s.value for s in ConnectionStatus)}, not {status!r}"
        ) from None
    since, until = params.get("since"), params.get("until")
    filters = ConnectionFilter(
        principal=params.get("principal"),
        runtime=params.get("runtime"),
        since=None if since is None else parse_time(since, now=now, what="since"),
        until=None if until is None else parse_time(until, now=now, what="until"),
        exit_code=_int(params, "exit_code", None),
        failed="failed" in params,
        status=state,
        shell_id=params.get("shell"),
        limit=MAX_LIST_LIMIT,
    )
    return query, WHERE[params.get("in", "all")], filters, limit


def _int(params: dict[str, str], name: str, default: int | None) -> Any:
    text = params.get(name)
    if text is None:
        return default
    if not _WHOLE.fullmatch(text):
        raise BadRequest(f"{name} must be a whole number, not {text!r}")
    return int(text)
