"""Running the long-lived servers' event loop: uvloop when it is installed, asyncio's own otherwise.

uvloop (libuv) does the same work as asyncio's selector loop for a fraction of the CPU per message:
on the relay that is most of what the proxy itself costs. ``RECORDER_EVENT_LOOP=asyncio`` picks the
standard loop anyway (to compare, or to rule uvloop out).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: Environment variable that names the loop: ``uvloop`` (the default when installed) or ``asyncio``.
LOOP_ENV = "RECORDER_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when it is installed and not turned off; None for asyncio's default."""
    if os.environ.get(LOOP_ENV, "uvloop").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """Which loop :func:`run` uses: ``uvloop`` or ``asyncio``."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
