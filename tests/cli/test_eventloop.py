"""The servers' event loop: uvloop when installed, asyncio's own when asked for or missing."""

from __future__ import annotations

import asyncio
import gc

import pytest

from recorder.cli import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_runs_the_servers_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop", reason="uvloop is not installed (a dependency off Windows)")
    monkeypatch.delenv(eventloop.LOOP_ENV, raising=False)
    assert eventloop.loop_name() == "uvloop"
    assert eventloop.run(_loop_module()).startswith("uvloop")


@pytest.mark.parametrize("value", ["asyncio", " AsyncIO "])
def test_the_environment_picks_asyncios_own_loop(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(eventloop.LOOP_ENV, value)
    assert eventloop.loop_factory() is None
    assert eventloop.loop_name() == "asyncio"
    assert eventloop.run(_loop_module()).startswith("asyncio")


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_the_start_up_heap_is_left_out_of_later_collections() -> None:
    alive = _Node()
    try:
        eventloop.freeze_startup_heap()
        assert gc.get_freeze_count() > 0
        # What lived at start-up is in no generation: no collection walks it again.
        assert not any(o is alive for o in gc.get_objects())
        # Garbage made afterwards is still collected.
        later = _Node()
        later_id = id(later)
        del later
        assert gc.collect() > 0
        assert not any(id(o) == later_id and isinstance(o, _Node) for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0 and any(o is alive for o in gc.get_objects())
