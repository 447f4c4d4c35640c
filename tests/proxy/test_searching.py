"""The proxy's search service on a real SQLite index: who is an auditor, no search without its
audit entry, and the bound on searches waiting."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from recorder.index.access import list_audit
from recorder.index.db import make_engine, upgrade
from recorder.index.store import Index
from recorder.proxy.searching import BUSY_RETRY_AFTER, Auditors, SearchService


@pytest.fixture
def index(tmp_path: Path) -> Index:
    engine = make_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    upgrade(engine)
    return Index(engine)


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
        assert (ok.status, ok.body) == (200, "")
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
    release = threading.Event()
    # Hold the search thread, so that searches queue behind it.
    blocker = asyncio.get_running_loop().run_in_executor(service._thread, release.wait, 30)
    try:
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
    finally:
        release.set()
        await blocker
        service.close()
