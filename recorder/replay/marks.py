"""Incremental scanner for the control sequences replay must see but the emulator does not report.

The emulator (avt) interprets escape sequences silently. Replay needs to know *where* in the
output stream a few of them occur, so that it can look at the screen at that exact moment:

- OSC 133 shell-integration marks (``ESC ] 133 ; A|B|C|D[;status] BEL`` or ``... ESC \\``),
- switches to and from the alternate screen (DECSET/DECRST 47, 1047, 1049),
- erase-in-display (ED 0/1/2) and full reset (RIS), which throw screen content away.

:class:`MarkScanner` splits each chunk of output into text and :class:`Mark` items. A sequence
split across two chunks is held back until it completes, up to :data:`MAX_MARK_LENGTH`
characters; past that it is passed through as ordinary text (it cannot be one of ours).
Only 7-bit (ESC-prefixed) forms are recognised: 8-bit C1 introducers do not occur in UTF-8
shells' output in practice.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

#: Longest sequence the scanner holds back while waiting for the rest of it (characters).
MAX_MARK_LENGTH = 512

_ALT_MODES = frozenset({"47", "1047", "1049"})

_MARK_RE = re.compile(
    r"\x1b\]133;(?P<osc>[^\x07\x1b]{0," + str(MAX_MARK_LENGTH) + r"})(?:\x07|\x1b\\)"
    r"|\x1b\[\?(?P<modes>[0-9;]{1,32})(?P<hl>[hl])"
    r"|\x1b\[(?P<ed>[012]?)J"
    r"|(?P<ris>\x1bc)"
)

# A tail that may still become one of the sequences above once more text arrives.
_PARTIAL_RE = re.compile(r"\x1b(?:\](?:1(?:3(?:3(?:;[^\x07\x1b]*\x1b?)?)?)?)?|\[(?:\?[0-9;]*|[012])?)?\Z")


class MarkKind(enum.Enum):
    """What a mark says happened at its place in the output stream."""

    PROMPT_START = "A"
    COMMAND_START = "B"
    COMMAND_EXECUTED = "C"
    COMMAND_FINISHED = "D"
    ALT_SCREEN_ON = "alt-on"
    ALT_SCREEN_OFF = "alt-off"
    ERASE_BELOW = "ed0"
    ERASE_ABOVE = "ed1"
    ERASE_ALL = "ed2"
    RESET = "ris"


@dataclass(frozen=True, slots=True)
class Mark:
    """One recognised sequence; ``status`` is the exit status carried by ``133;D;<status>``."""

    kind: MarkKind
    status: int | None = None


_OSC_KINDS = {
    "A": MarkKind.PROMPT_START,
    "B": MarkKind.COMMAND_START,
    "C": MarkKind.COMMAND_EXECUTED,
    "D": MarkKind.COMMAND_FINISHED,
}
_ED_KINDS = {"": MarkKind.ERASE_BELOW, "0": MarkKind.ERASE_BELOW, "1": MarkKind.ERASE_ABOVE}


def _osc_mark(body: str) -> Mark | None:
    parts = body.split(";")
    kind = _OSC_KINDS.get(parts[0])
    if kind is None:
        return None
    status: int | None = None
    if kind is MarkKind.COMMAND_FINISHED and len(parts) > 1:
        try:
            status = int(parts[1])
        except ValueError:
            status = None
    return Mark(kind, status)


def _match_mark(m: re.Match[str]) -> Mark | None:
    osc = m.group("osc")
    if osc is not None:
        return _osc_mark(osc)
    modes = m.group("modes")
    if modes is not None:
        if _ALT_MODES.isdisjoint(modes.split(";")):
            return None
        return Mark(MarkKind.ALT_SCREEN_ON if m.group("hl") == "h" else MarkKind.ALT_SCREEN_OFF)
    ed = m.group("ed")
    if ed is not None:
        return Mark(_ED_KINDS.get(ed, MarkKind.ERASE_ALL))
    return Mark(MarkKind.RESET)


class MarkScanner:
    """Split output into text and marks; each mark sits just before its own sequence's text."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = ""

    @property
    def pending(self) -> str:
        """Text held back because it may be the start of a sequence split across chunks."""
        return self._pending

    @pending.setter
    def pending(self, value: str) -> None:
        self._pending = value

    def scan(self, text: str) -> list[str | Mark]:
        """Return the chunk as text pieces and marks, in stream order (held-back text excluded)."""
        buf = self._pending + text if self._pending else text
        self._pending = ""
        if "\x1b" not in buf:
            return [buf] if buf else []
        out: list[str | Mark] = []
        start = 0
        for m in _MARK_RE.finditer(buf):
            mark = _match_mark(m)
            if mark is None:
                continue
            # The mark's own sequence stays with the following text: consumers look at the
            # screen before a clear or a buffer switch takes effect.
            pos = m.start()
            if pos > start:
                out.append(buf[start:pos])
            out.append(mark)
            start = pos
        window = max(start, len(buf) - MAX_MARK_LENGTH)
        tail = _PARTIAL_RE.search(buf, window)
        # The search starts at or after the last mark, whose complete sequence can never match.
        end = tail.start() if tail is not None else len(buf)
        self._pending = buf[end:]
        if end > start:
            out.append(buf[start:end])
        return out

    def flush(self) -> str:
        """Return and forget the held-back text (at the end of the stream)."""
        rest, self._pending = self._pending, ""
        return rest
