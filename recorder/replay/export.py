"""Exports of a recording or a clip: asciicast v2/v3, a text transcript, one offline HTML file, a bundle.

A clip starts from the right screen. Everything before ``start`` is condensed into one ``o`` event
at time 0: the emulator's own serialisation of the screen at ``start`` (avt's ``dump()``: both
buffers, cursor, pen, modes, scroll region), made portable (7-bit CSI, no REP, SGR colours with
semicolons) so that any player, and any real terminal, draws the same screen. The clip's header
takes the terminal size at ``start``.

The HTML export is one self-contained file: asciinema-player's JS and CSS (read at export time
from the ``sphinxcontrib-asciinema`` package, which ships the player's built files) are inlined
and the cast is embedded as a JSON string passed to ``AsciinemaPlayer.create({data: ...})``.
The recording's own ``m`` events and one marker per command typed appear on the seek bar.

A bundle is a zip of the cast, the HTML player, the transcript, the metadata as JSON, and
``SHA256SUMS`` (``sha256sum -c`` format) covering every other member.

Redaction (``--redact REGEX``) masks matches in the output (``o`` events) of the exported copy,
every character of a match becoming ``*``, before anything is derived from it (clip prelude,
transcript, HTML, bundle). Rules run over the whole output stream concatenated, not event by
event, so a secret split across two output events (or more) is still found; the cost is that
the output is held in memory, which exports already do. What was masked (rule, time of the event
where the match starts, length) is recorded with the original's SHA-256 in the cast header's
``recorder.redactions`` and in a bundle's ``REDACTIONS.json``, so the original stays provable.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import html
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from itertools import chain
from pathlib import Path
from typing import Any

from recorder.cast.integrity import sidecar_path
from recorder.cast.model import CONTEXT_KEY, MARKER, OUTPUT, RESIZE, Event, Header, parse_resize
from recorder.cast.timing import clip
from recorder.cast.writer import CastWriter
from recorder.errors import CastError, ExportError, InvalidRedaction
from recorder.logfmt import get_logger
from recorder.replay.commands import extract_commands
from recorder.replay.render import SNAPSHOT_CHARS
from recorder.replay.screen import Screen
from recorder.replay.transcript import transcript

log = get_logger(__name__)

#: The PyPI distribution (import package) that ships asciinema-player's built JS and CSS.
PLAYER_PACKAGE = "sphinxcontrib.asciinema"
#: Where inside that package the player's files are.
PLAYER_ASSET_DIR = "_static"
#: Largest cast (bytes, after clipping) embedded in an HTML export; a browser tab holds it all.
MAX_HTML_CAST_BYTES = 64 * 1024 * 1024
#: Longest command marker label on the HTML seek bar (characters; longer ones end in an ellipsis).
MARKER_LABEL_CHARS = 80
#: Member names inside a bundle.
BUNDLE_CAST = "recording.cast"
BUNDLE_HTML = "player.html"
BUNDLE_TRANSCRIPT = "transcript.txt"
BUNDLE_METADATA = "metadata.json"
BUNDLE_MANIFEST = "SHA256SUMS"
BUNDLE_REDACTIONS = "REDACTIONS.json"
#: Integrity members of a bundle of a whole, unredacted recording: the file exactly as recorded,
#: its signed chain, and the public key, so ``recorder verify`` works on them anywhere.
BUNDLE_ORIGINAL = "original.cast"
BUNDLE_CHAIN = "original.cast.chain"
BUNDLE_PUBLIC_KEY = "signing-key.pub.pem"
#: Most --redact rules one export takes, and the longest pattern.
MAX_REDACTION_RULES = 64
MAX_REDACTION_PATTERN = 1024
#: What each character of a match becomes.
REDACTION_MASK = "*"

_CSI_OR_CONTROL = re.compile(
    r"\x1b\[([0-9;:?<=>]*)([\x20-\x2f]*)([\x40-\x7e])|\x1b[\x20-\x7e]|[\x00-\x1f\x7f]"
)


class ExportFormat(StrEnum):
    """What ``recorder export`` writes."""

    CAST_V2 = "cast-v2"
    CAST_V3 = "cast-v3"
    TXT = "txt"
    HTML = "html"
    BUNDLE = "bundle"


# -- condensed clips -----------------------------------------------------------------------------


def _portable_sgr(params: str) -> str:
    out: list[str] = []
    for param in params.split(";"):
        parts = param.split(":")
        if len(parts) > 1 and parts[0] in ("38", "48", "58"):
            if parts[1] == "5" and len(parts) == 3:
                param = ";".join(parts)
            elif parts[1] == "2" and len(parts) in (5, 6):
                # 38:2:r:g:b or 38:2:colorspace:r:g:b -> the widely understood 38;2;r;g;b.
                param = ";".join([parts[0], "2", *parts[-3:]])
        out.append(param)
    return ";".join(out)


def portable_dump(dump: str) -> str:
    """avt's screen serialisation with 7-bit CSI, REP expanded and SGR colours in semicolon form."""
    text = dump.replace("\x9b", "\x1b[")
    out: list[str] = []
    last = ""
    pos = 0
    for m in _CSI_OR_CONTROL.finditer(text):
        if m.start() > pos:
            plain = text[pos : m.start()]
            out.append(plain)
            last = plain[-1]
        pos = m.end()
        params, inter, final = m.group(1), m.group(2), m.group(3)
        if final == "b" and not inter and params.isdigit():
            # REP repeats the last graphic character; not every terminal implements it.
            out.append(last * int(params))
        elif final == "m" and not inter and params and ":" in params:
            out.append(f"\x1b[{_portable_sgr(params)}m")
        else:
            out.append(m.group(0))
    out.append(text[pos:])
    return "".join(out)


def _apply(screen: Screen, ev: Event) -> None:
    if ev.code == OUTPUT:
        screen.feed(ev.data)
    elif ev.code == RESIZE:
        size = parse_resize(ev.data)
        if size is not None:
            screen.resize(*size)


def clip_condensed(
    header: Header,
    events: Iterable[Event],
    start: float = 0.0,
    end: float | None = None,
    *,
    every_chars: int = SNAPSHOT_CHARS,
) -> tuple[Header, Iterator[Event]]:
    """The clip ``start..end`` rebased to 0, its first event drawing the screen as it was at ``start``.

    Reads the events before ``start`` at once (to learn the screen and its size) and the rest
    lazily. The returned header has the terminal size at ``start``. Should ``start`` fall inside
    an escape sequence, the output since the last snapshot (every ``every_chars`` characters) is
    replayed as it was, at time 0, so the result stays exact.
    """
    clip((), start, end)  # validates start and end (CastValueError)
    it = iter(events)
    screen = Screen(header.width, header.height)
    snapshot: tuple[int, int, str] | None = None
    tail: list[Event] = []
    chars = 0
    first: Event | None = None
    for ev in it:
        if ev.time >= start:
            first = ev
            break
        if ev.code not in (OUTPUT, RESIZE):
            continue  # keys, markers and exits before the clip do not change its first screen
        _apply(screen, ev)
        tail.append(ev)
        if ev.code == OUTPUT:
            chars += len(ev.data)
        if chars >= every_chars and screen.at_rest:
            snapshot = (screen.cols, screen.rows, portable_dump(screen.state().dump))
            tail, chars = [], 0
    prelude: list[Event] = []
    cols, rows = header.width, header.height
    if tail or snapshot is not None:
        if screen.at_rest:
            cols, rows = screen.cols, screen.rows
            prelude = [Event(0.0, OUTPUT, portable_dump(screen.state().dump))]
        else:
            if snapshot is not None:
                cols, rows, dump = snapshot
                prelude.append(Event(0.0, OUTPUT, dump))
            prelude.extend(Event(0.0, ev.code, ev.data) for ev in tail)
            log.info("replay.clip_inside_sequence", start=start, replayed=len(tail))
    timestamp = header.timestamp + int(start) if header.timestamp is not None else None
    clipped = dataclasses.replace(header, width=cols, height=rows, timestamp=timestamp)
    rest = chain([first], it) if first is not None else iter(())
    return clipped, chain(prelude, clip(rest, start, end))


def shifted(events: Iterable[Event], offset: float) -> Iterator[Event]:
    """The events with ``offset`` seconds added to their times (a clip back on the original's clock)."""
    for ev in events:
        yield Event(ev.time + offset, ev.code, ev.data)


# -- redaction -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedactionMatch:
    """One masked span: which rule, the time of the output event it starts in, how many characters."""

    time: float
    rule: int
    length: int


@dataclass(frozen=True, slots=True)
class Redactions:
    """What an export masked, against the SHA-256 of the original recording(s)."""

    original_sha256: str | list[str] | None
    rules: tuple[str, ...]
    matches: tuple[RedactionMatch, ...]

    def as_json(self) -> dict[str, Any]:
        """The record written into the exported header and a bundle's REDACTIONS.json."""
        return {
            "original_sha256": self.original_sha256,
            "rules": list(self.rules),
            "count": len(self.matches),
            "matches": [{"time": m.time, "rule": m.rule, "length": m.length} for m in self.matches],
        }


def compile_redactions(patterns: Sequence[str]) -> list[re.Pattern[str]]:
    """Compile ``--redact`` patterns; a bad one (or one matching nothing but "") is InvalidRedaction."""
    if len(patterns) > MAX_REDACTION_RULES:
        raise InvalidRedaction(f"{len(patterns)} redaction rules exceed the {MAX_REDACTION_RULES}-rule limit")
    compiled = []
    for pattern in patterns:
        if len(pattern) > MAX_REDACTION_PATTERN:
            raise InvalidRedaction(f"redaction pattern exceeds {MAX_REDACTION_PATTERN} characters")
        try:
            rule = re.compile(pattern)
        except re.error as exc:
            raise InvalidRedaction(f"invalid redaction pattern {pattern!r}: {exc}") from None
        if rule.fullmatch("") is not None:
            raise InvalidRedaction(f"redaction pattern {pattern!r} matches the empty string")
        compiled.append(rule)
    return compiled


def redact(
    events: Sequence[Event], rules: Sequence[re.Pattern[str]], original_sha256: str | list[str] | None
) -> tuple[list[Event], Redactions]:
    """The events with every rule's matches in the output stream masked, and what was masked."""
    outputs = [i for i, ev in enumerate(events) if ev.code == OUTPUT]
    pieces = [events[i].data for i in outputs]
    text = "".join(pieces)
    starts: list[int] = []
    pos = 0
    for piece in pieces:
        starts.append(pos)
        pos += len(piece)
    spans: list[tuple[int, int]] = []
    matches: list[RedactionMatch] = []
    for number, rule in enumerate(rules):
        for m in rule.finditer(text):
            if m.end() == m.start():
                continue
            first = bisect.bisect_right(starts, m.start()) - 1
            matches.append(RedactionMatch(events[outputs[first]].time, number, m.end() - m.start()))
            spans.append((m.start(), m.end()))
    matches.sort(key=lambda m: (m.time, m.rule))
    report = Redactions(original_sha256, tuple(r.pattern for r in rules), tuple(matches))
    if not spans:
        return list(events), report
    chars = list(text)
    for a, b in spans:
        chars[a:b] = REDACTION_MASK * (b - a)
    masked = "".join(chars)
    out = list(events)
    for i, start, piece in zip(outputs, starts, pieces, strict=True):
        ev = events[i]
        out[i] = Event(ev.time, ev.code, masked[start : start + len(piece)])
    return out, report


def with_redactions(header: Header, report: Redactions) -> Header:
    """The header with the redaction record under its recorder context (players ignore it)."""
    context = {**header.context, "redactions": report.as_json()}
    return dataclasses.replace(header, extra={**header.extra, CONTEXT_KEY: context})


# -- formats -------------------------------------------------------------------------------------


def cast_bytes(header: Header, events: Iterable[Event], version: int = 2) -> bytes:
    """The recording as asciicast v2 or v3 bytes."""
    buf = io.BytesIO()
    writer = CastWriter(buf, dataclasses.replace(header, version=version), version)
    writer.write_header()
    for ev in events:
        writer.write_event(ev.time, ev.code, ev.data)
    return buf.getvalue()


def transcript_text(header: Header, events: Iterable[Event]) -> str:
    """The transcript (commands with offsets, their output indented) as one string."""
    return "".join(line + "\n" for line in transcript(header, events))


def command_markers(header: Header, events: Iterable[Event]) -> list[Event]:
    """One ``m`` event per command typed, labelled ``$ command``, at the time Enter was pressed."""
    out: list[Event] = []
    for cmd in extract_commands(header, events):
        label = "$ " + " ".join(cmd.text.split())
        if len(label) > MARKER_LABEL_CHARS:
            label = label[: MARKER_LABEL_CHARS - 1] + "…"
        out.append(Event(cmd.offset, MARKER, label))
    return out


@dataclass(frozen=True, slots=True)
class PlayerAssets:
    """asciinema-player's built files and the player version they are."""

    js: str
    css: str
    version: str


@functools.cache
def player_assets() -> PlayerAssets:
    """Read asciinema-player's JS and CSS from the installed ``sphinxcontrib-asciinema`` package."""
    try:
        folder = resources.files(PLAYER_PACKAGE) / PLAYER_ASSET_DIR
        names = sorted(p.name for p in folder.iterdir())
    except (ModuleNotFoundError, OSError) as exc:
        raise ExportError(
            f"asciinema-player files not found ({exc}); reinstall recorder (it needs sphinxcontrib-asciinema)"
        ) from None
    js = [n for n in names if n.startswith("asciinema-player") and n.endswith(".js")]
    css = [n for n in names if n.startswith("asciinema-player") and n.endswith(".css")]
    if not js or not css:
        raise ExportError(
            f"no asciinema-player .js/.css in {PLAYER_PACKAGE}; reinstall sphinxcontrib-asciinema"
        )
    version = js[-1].removeprefix("asciinema-player").removesuffix(".js").lstrip("_-") or "unknown"
    return PlayerAssets(
        (folder / js[-1]).read_text(encoding="utf-8"), (folder / css[-1]).read_text(encoding="utf-8"), version
    )


def _script_json(value: Any) -> str:
    # ASCII-only JSON with <, > and & escaped cannot end the <script> element it sits in.
    text = json.dumps(value, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(
    header: Header,
    events: Sequence[Event],
    *,
    title: str,
    autoplay: bool = False,
    markers: bool = True,
    max_cast_bytes: int = MAX_HTML_CAST_BYTES,
) -> str:
    """One offline HTML page playing the recording in asciinema-player (JS, CSS and cast inlined)."""
    if markers:
        merged = sorted(chain(events, command_markers(header, events)), key=lambda ev: ev.time)
    else:
        merged = list(events)
    data = cast_bytes(header, merged, 2)
    if len(data) > max_cast_bytes:
        raise ExportError(
            f"recording of {len(data)} bytes exceeds the {max_cast_bytes}-byte HTML limit; "
            "export a clip with --from/--to, or use cast-v2"
        )
    assets = player_assets()
    # controls: true keeps the seek bar (and its markers) on screen instead of only on hover.
    options = {
        "autoPlay": autoplay,
        "preload": True,
        "controls": True,
        "fit": "width",
        "idleTimeLimit": header.idle_time_limit,
    }
    options = {k: v for k, v in options.items() if v is not None}
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        f'<meta name="generator" content="recorder, asciinema-player {html.escape(assets.version)}">\n'
        f"<style>\n{assets.css}\n</style>\n"
        "<style>body{margin:0;padding:16px;background:#121212;color:#ccc;font-family:sans-serif}"
        "h1{font-size:14px;font-weight:normal;margin:0 0 8px}</style>\n"
        "</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        '<div id="player"></div>\n'
        f"<script>\n{assets.js}\n</script>\n"
        "<script>\n"
        f"AsciinemaPlayer.create({{data: {_script_json(data.decode('utf-8'))}}}, "
        f"document.getElementById('player'), {_script_json(options)});\n"
        "</script>\n</body>\n</html>\n"
    )


def sha256sums(members: Mapping[str, bytes]) -> str:
    """``sha256sum -c`` lines for the members, in the order given."""
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in members.items())


def bundle_bytes(
    header: Header,
    events: Sequence[Event],
    *,
    metadata: Mapping[str, Any],
    title: str,
    start: float = 0.0,
    version: int = 2,
    redactions: Redactions | None = None,
    integrity: Mapping[str, bytes] | None = None,
) -> bytes:
    """A zip: cast, HTML player, transcript, metadata JSON (and REDACTIONS.json) and SHA256SUMS."""
    members: dict[str, bytes] = {
        BUNDLE_CAST: cast_bytes(header, events, version),
        BUNDLE_HTML: render_html(header, events, title=title).encode("utf-8"),
        BUNDLE_TRANSCRIPT: transcript_text(header, shifted(events, start)).encode("utf-8"),
        BUNDLE_METADATA: (json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"),
    }
    if redactions is not None:
        members[BUNDLE_REDACTIONS] = (json.dumps(redactions.as_json(), indent=2) + "\n").encode("utf-8")
    members.update(integrity or {})
    members[BUNDLE_MANIFEST] = sha256sums(members).encode("ascii")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def verify_bundle(path: str | os.PathLike[str]) -> dict[str, str]:
    """Check every member against the bundle's SHA256SUMS; return name -> sha256, or raise ExportError."""
    try:
        with zipfile.ZipFile(path) as zf:
            lines = zf.read(BUNDLE_MANIFEST).decode("ascii").splitlines()
            sums: dict[str, str] = {}
            for line in lines:
                digest, _, name = line.partition("  ")
                actual = hashlib.sha256(zf.read(name)).hexdigest()
                if actual != digest:
                    raise ExportError(f"{name}: sha256 {actual} does not match the manifest's {digest}")
                sums[name] = digest
            missing = set(zf.namelist()) - set(sums) - {BUNDLE_MANIFEST}
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ExportError(f"cannot verify bundle {os.fspath(path)}: {exc}") from None
    if missing:
        raise ExportError(f"members not in the manifest: {sorted(missing)}")
    return sums


# -- writing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an export wrote."""

    path: Path
    format: ExportFormat
    size: int
    events: int
    redactions: Redactions | None = None


def integrity_members(cast_path: Path, public_key_pem: str) -> dict[str, bytes]:
    """Bundle members that prove a recording: the file as recorded, its chain sidecar, the public key."""
    try:
        chain = sidecar_path(cast_path).read_bytes()
        original = cast_path.read_bytes()
    except FileNotFoundError:
        return {}  # recorded before integrity chains: nothing to prove it with
    except OSError as exc:
        raise ExportError(f"cannot read {cast_path}: {exc.strerror or exc}") from None
    return {BUNDLE_ORIGINAL: original, BUNDLE_CHAIN: chain, BUNDLE_PUBLIC_KEY: public_key_pem.encode("ascii")}


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then rename."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None


def export_recording(
    header: Header,
    events: Iterable[Event],
    fmt: ExportFormat | str,
    out: Path,
    *,
    start: float = 0.0,
    end: float | None = None,
    title: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    autoplay: bool = False,
    redact_rules: Sequence[re.Pattern[str]] = (),
    original_sha256: str | list[str] | None = None,
    integrity: Mapping[str, bytes] | None = None,
) -> ExportResult:
    """Export the clip ``start..end`` (the whole recording by default) to ``out`` in ``fmt``.

    With ``redact_rules``, output matching them is masked first (see the module docstring)."""
    try:
        fmt = ExportFormat(fmt)
    except ValueError:
        choices = ", ".join(f.value for f in ExportFormat)
        raise ExportError(f"unknown export format {fmt!r}; choose one of {choices}") from None
    report: Redactions | None = None
    if redact_rules:
        events, report = redact(list(events), redact_rules, original_sha256)
        header = with_redactions(header, report)
    clip_header, clipped_iter = clip_condensed(header, events, start, end)
    clipped = list(clipped_iter)
    name = title or header.title or out.stem
    source_version = header.version if header.version in (2, 3) else 2
    try:
        if fmt is ExportFormat.CAST_V2:
            data = cast_bytes(clip_header, clipped, 2)
        elif fmt is ExportFormat.CAST_V3:
            data = cast_bytes(clip_header, clipped, 3)
        elif fmt is ExportFormat.TXT:
            data = transcript_text(clip_header, shifted(clipped, start)).encode("utf-8")
        elif fmt is ExportFormat.HTML:
            data = render_html(clip_header, clipped, title=name, autoplay=autoplay).encode("utf-8")
        else:
            export_info = {"from": start, "to": end, "title": name, "player": player_assets().version}
            meta = {**(metadata or {}), "export": export_info}
            data = bundle_bytes(
                clip_header,
                clipped,
                metadata=meta,
                title=name,
                start=start,
                version=source_version,
                redactions=report,
                # A redacted bundle must not carry the unredacted original.
                integrity=None if redact_rules else integrity,
            )
    except CastError as exc:
        raise ExportError(f"cannot export: {exc}") from None
    write_atomic(out, data)
    log.info("replay.exported", path=out, format=fmt.value, bytes=len(data), events=len(clipped))
    return ExportResult(out, fmt, len(data), len(clipped), report)
