"""Structured logging: one event name and key=value pairs per line."""

from __future__ import annotations

import logging
import sys
from typing import Any


def _fmt(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class KVLogger:
    """A thin wrapper over ``logging.Logger``: ``log.info("event", key=value, ...)``."""

    __slots__ = ("_logger",)

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            parts = [event] + [f"{k}={_fmt(v)}" for k, v in fields.items()]
            self._logger.log(level, " ".join(parts))

    def debug(self, event: str, **fields: Any) -> None:
        """Log at DEBUG."""
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log at INFO."""
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log at WARNING."""
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log at ERROR."""
        self._log(logging.ERROR, event, fields)


def get_logger(name: str) -> KVLogger:
    """A structured logger for module ``name``."""
    return KVLogger(name)


def configure(level: str = "INFO") -> None:
    """Send logs to stderr as ``time level logger event key=value``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # websockets logs every failed handshake with a traceback at ERROR; ours say it in one line.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
