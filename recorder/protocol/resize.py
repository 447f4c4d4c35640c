"""RESIZE payloads: {"width": cols, "height": rows}."""

from __future__ import annotations

import json
from dataclasses import dataclass

from recorder.errors import InvalidResize

#: The kernel's winsize fields are unsigned shorts.
MAX_DIMENSION = 0xFFFF


@dataclass(frozen=True, slots=True)
class Resize:
    """A terminal size in columns and rows."""

    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if type(value) is not int or not 1 <= value <= MAX_DIMENSION:
                raise InvalidResize(
                    f"RESIZE {name} must be an integer from 1 to {MAX_DIMENSION}, got {value!r}"
                )

    def serialize(self) -> bytes:
        """The RESIZE payload."""
        return json.dumps({"width": self.width, "height": self.height}, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, payload: bytes) -> Resize:
        """Parse and validate a RESIZE payload."""
        try:
            obj = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise InvalidResize("RESIZE payload is not JSON") from None
        if not isinstance(obj, dict) or "width" not in obj or "height" not in obj:
            raise InvalidResize('RESIZE payload must be {"width": cols, "height": rows}')
        return cls(obj["width"], obj["height"])
