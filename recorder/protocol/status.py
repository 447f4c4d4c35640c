"""STATUS payloads: a Kubernetes metav1.Status object as compact JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from recorder.errors import InvalidStatus

_BASE: dict[str, Any] = {"kind": "Status", "apiVersion": "v1"}


@dataclass(frozen=True, slots=True)
class Confirmation:
    """Sent right after the upgrade, and again after a reconnect's replay when bytes were dropped."""

    shell_id: str
    reconnected: bool = False
    bytes_dropped: int | None = None


@dataclass(frozen=True, slots=True)
class Termination:
    """Sent when the shell ends (exit code, signal) or the platform fails (internal error)."""

    exit_code: int | None
    signal: int | None = None
    internal_error: bool = False
    message: str | None = None

    @property
    def success(self) -> bool:
        """True for a clean exit with status 0."""
        return self.exit_code == 0 and not self.internal_error


StatusInfo = Confirmation | Termination


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def confirmation(shell_id: str, *, reconnected: bool = False, bytes_dropped: int | None = None) -> bytes:
    """The connection confirmation payload."""
    meta: dict[str, Any] = {"shellId": shell_id, "reconnected": reconnected}
    if bytes_dropped is not None:
        meta["bytesDropped"] = bytes_dropped
    return _dump({**_BASE, "metadata": meta, "status": "Success"})


def exited(exit_code: int, *, signal: int | None = None) -> bytes:
    """The termination payload for a shell that exited (or was killed by ``signal``)."""
    if signal is not None:
        exit_code = 128 + signal
    if exit_code == 0:
        return _dump({**_BASE, "metadata": {}, "status": "Success"})
    causes: list[dict[str, str]] = [{"reason": "ExitCode", "message": str(exit_code)}]
    if signal is not None:
        causes.append({"reason": "Signal", "message": str(signal)})
    return _dump(
        {
            **_BASE,
            "metadata": {},
            "status": "Failure",
            "reason": "NonZeroExitCode",
            "message": f"command terminated with exit code {exit_code}",
            "details": {"causes": causes},
        }
    )


def internal_error(message: str) -> bytes:
    """The termination payload for a platform failure."""
    return _dump(
        {
            **_BASE,
            "metadata": {},
            "status": "Failure",
            "reason": "InternalError",
            "message": message,
            "code": 500,
        }
    )


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidStatus(f"STATUS {what} is not an integer: {value!r}") from None


def parse(payload: bytes) -> StatusInfo:
    """Parse a STATUS payload into a Confirmation or a Termination."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidStatus(f"STATUS payload is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidStatus("STATUS payload is not a JSON object")
    meta = obj.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise InvalidStatus("STATUS metadata is not an object")
    status = obj.get("status")
    if status not in ("Success", "Failure"):
        raise InvalidStatus(f"STATUS status must be Success or Failure, got {status!r}")
    shell_id = meta.get("shellId")
    if shell_id:
        if not isinstance(shell_id, str):
            raise InvalidStatus("STATUS metadata.shellId is not a string")
        dropped = meta.get("bytesDropped")
        return Confirmation(
            shell_id=shell_id,
            reconnected=bool(meta.get("reconnected", False)),
            bytes_dropped=None if dropped is None else _int(dropped, "bytesDropped"),
        )
    message = obj.get("message")
    message = message if isinstance(message, str) else None
    if status == "Success":
        return Termination(exit_code=0, message=message)
    if obj.get("reason") == "InternalError":
        return Termination(exit_code=None, internal_error=True, message=message)
    exit_code: int | None = None
    signal: int | None = None
    details = obj.get("details") or {}
    causes = details.get("causes") if isinstance(details, dict) else None
    for cause in causes or []:
        if not isinstance(cause, dict):
            continue
        if cause.get("reason") == "ExitCode":
            exit_code = _int(cause.get("message"), "exit code")
        elif cause.get("reason") == "Signal":
            signal = _int(cause.get("message"), "signal")
    return Termination(exit_code=exit_code, signal=signal, message=message)
