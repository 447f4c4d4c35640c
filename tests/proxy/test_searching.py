"""The proxy's search service on a real SQLite index: who is an auditor, no search without its
audit entry, and the bound on searches waiting."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from recorder.index.access import list_audit
from recorder.index.db import make_engine, upgrade
from recorder.index.hits import Hit
from recorder.index.store import Index
from recorder.proxy import searching
from recorder.proxy.searching import BUSY_RETRY_AFTER, Auditors, SearchService


@pytest.fixture
def index(tmp_path: Path) -> Index:
    engine = make_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    upgrade(engine)
    return Index(engine)


@contextlib.asynccontextmanager
async def thread_held(service: SearchService) -> AsyncIterator[threading.Event]:
    """Hold the service's search thread (searches queue behind it) until the event is set; close after."""
    release = threading.Event()
    blocker = asyncio.get_running_loop().run_in_executor(service._thread, release.wait, 30)
    try:
        yield release
    finally:
        release.set()
        await blocker
        service.close()


def test_auditors_are_the_principals_and_groups_named_and_nobody_unauthenticated() -> None:
    auditors = Auditors.of(["alice"], ["secops"])
    assert auditors.admit("alice", ())
    assert auditors.admit("carol", ("dev", "secops"))
    assert not auditors.admit("bob", ("dev",))
    assert not auditors.admit(None, ("secops",))
    assert not Auditors.of() and Auditors.of(groups=["g"])


async def test_a_search_runs_only_after_its_audit_entry_is_written(index: Index) -> None:
    service = SearchService(index, Auditors.of(["alice"]))
    try:
        ok = await service.answer("/v1/search?q=word&in=output&failed=1", "alice", "10.0.0.1:5000")
        assert (ok.status, ok.body) == (200, b"")
        [entry] = list_audit(index)
        assert entry.actor == "alice" and entry.command == "search"
        assert entry.arguments == {
            "query": "word",
            "where": "output",
            "failed": True,
            "limit": 50,
            "via": "proxy",
            "client_address": "10.0.0.1:5000",
        }
        # Numbers are logged as numbers, as `recorder search` logs them.
        await service.answer("/v1/search?q=word&exit_code=-2&limit=7", "alice", "10.0.0.1:5000")
        numbers = list_audit(index)[0].arguments
        assert (numbers["exit_code"], numbers["limit"]) == (-2, 7)
        # The audit log cannot be written: 503, and the search does not run.
        with index.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE audit_log"))
        refused = await service.answer("/v1/search?q=word", "alice", "10.0.0.1:5000")
        assert (refused.status, refused.body) == (
            503,
            "the audit log cannot be written; the search did not run\n",
        )
    finally:
        service.close()


async def test_searches_past_the_queue_bound_get_503_with_retry_after(index: Index) -> None:
    service = SearchService(index, Auditors.of(["alice"]), max_queued=2)
    async with thread_held(service) as release:
        waiting = [
            asyncio.create_task(service.answer("/v1/search?q=word", "alice", "127.0.0.1:1")) for _ in range(3)
        ]
        await asyncio.sleep(0)
        busy = await service.answer("/v1/search?q=word", "alice", "127.0.0.1:1")
        assert (busy.status, busy.retry_after) == (503, BUSY_RETRY_AFTER)
        release.set()
        assert [a.status for a in await asyncio.gather(*waiting)] == [200, 200, 200]
        # The queue drained: the next search runs.
        assert (await service.answer("/v1/search?q=word", "alice", "127.0.0.1:1")).status == 200
        assert len(list_audit(index)) == 4


async def test_the_audit_entry_is_written_before_the_search_runs(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spies around the real functions: the order of the calls is what is tested.
    calls: list[str] = []
    real_audit, real_search = searching.record_audit, searching.search

    def audit(*args: Any, **kwargs: Any) -> int:
        calls.append("audit")
        return real_audit(*args, **kwargs)

    def search(*args: Any, **kwargs: Any) -> list[Hit]:
        calls.append("search")
        return real_search(*args, **kwargs)

    monkeypatch.setattr(searching, "record_audit", audit)
    monkeypatch.setattr(searching, "search", search)
    service = SearchService(index, Auditors.of(["alice"]))
    try:
        assert (await service.answer("/v1/search?q=word", "alice", "127.0.0.1:1")).status == 200
    finally:
        service.close()
    assert calls == ["audit", "search"]


async def test_a_search_that_waited_past_its_deadline_is_dropped_unrun(index: Index) -> None:
    service = SearchService(index, Auditors.of(["alice"]), queue_deadline=0.05)
    async with thread_held(service) as release:
        late = asyncio.create_task(service.answer("/v1/search?q=word", "alice", "127.0.0.1:1"))
        await asyncio.sleep(0.2)
        release.set()
        answer = await late
        assert (answer.status, answer.retry_after) == (503, BUSY_RETRY_AFTER)
        assert not list_audit(index)


async def test_closing_answers_queued_searches_503_and_runs_none_of_them(index: Index) -> None:
    service = SearchService(index, Auditors.of(["alice"]))
    async with thread_held(service):
        queued = asyncio.create_task(service.answer("/v1/search?q=word", "alice", "127.0.0.1:2"))
        await asyncio.sleep(0.05)
        service.close()
        closed = await queued
        assert (closed.status, closed.body) == (503, "proxy is shutting down\n")
        assert (await service.answer("/v1/search?q=word", "alice", "127.0.0.1:4")).status == 503
        assert not list_audit(index)


async def test_a_running_search_whose_caller_left_counts_until_it_is_done(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    running, release = threading.Event(), threading.Event()
    real_search = searching.search

    def slow(*args: Any, **kwargs: Any) -> list[Hit]:
        running.set()
        release.wait(30)
        return real_search(*args, **kwargs)

    monkeypatch.setattr(searching, "search", slow)
    service = SearchService(index, Auditors.of(["alice"]), max_queued=0)
    try:
        gone = asyncio.create_task(service.answer("/v1/search?q=word", "alice", "127.0.0.1:1"))
        await asyncio.to_thread(running.wait, 10)
        gone.cancel()  # its handshake timed out, say; the search goes on in the thread
        await asyncio.sleep(0.01)
        assert (await service.answer("/v1/search?q=word", "alice", "127.0.0.1:2")).status == 503
        release.set()
        await asyncio.to_thread(service._thread.submit(lambda: None).result, 10)
        assert (await service.answer("/v1/search?q=word", "alice", "127.0.0.1:3")).status == 200
    finally:
        release.set()
        service.close()


def test_an_answer_stops_short_of_its_byte_bound_and_counts_what_it_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hit = Hit(1, "output", 1.0, "x" * 100, None, None, "s", "arn", datetime(2026, 1, 1, tzinfo=UTC), (), 0)
    one = len(searching._ndjson([hit])[0])
    monkeypatch.setattr(searching, "MAX_ANSWER_BYTES", 3 * one)
    body, sent = searching._ndjson([hit] * 5)
    assert (len(body), sent) == (3 * one, 3)
    monkeypatch.setattr(searching, "MAX_ANSWER_BYTES", 3 * one - 1)
    assert searching._ndjson([hit] * 5)[1] == 2
