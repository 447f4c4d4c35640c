"""Exports: clips that start from the right screen, portable screen dumps, casts a stock player reads,
one offline HTML file that plays in a real (headless) Chromium, and bundles whose sums verify."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import avt
import pytest
from PIL import Image, ImageStat

from recorder.cast.model import INPUT, MARKER, OUTPUT, RESIZE, Event, Header
from recorder.cast.reader import open_cast
from recorder.errors import CastValueError, ExportError, InvalidRedaction
from recorder.replay.export import (
    BUNDLE_CAST,
    BUNDLE_HTML,
    BUNDLE_MANIFEST,
    BUNDLE_METADATA,
    BUNDLE_REDACTIONS,
    BUNDLE_TRANSCRIPT,
    MARKER_LABEL_CHARS,
    MAX_REDACTION_PATTERN,
    MAX_REDACTION_RULES,
    REDACTION_MASK,
    ExportFormat,
    bundle_bytes,
    cast_bytes,
    clip_condensed,
    command_markers,
    compile_redactions,
    export_recording,
    player_assets,
    portable_dump,
    redact,
    render_html,
    verify_bundle,
)
from recorder.replay.render import screen_at
from recorder.replay.screen import Screen
from tests.replay.conftest import Scripted

pytestmark = pytest.mark.timeout(60)

#: Safety net for one headless Chromium run (never asserted as a duration).
CHROMIUM_TIMEOUT = 60
RED = "\x1b[48;2;255;0;0m"


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if p.suffix in (".cast", ".json"))


def read(path: Path) -> tuple[Header, list[Event]]:
    with open_cast(path) as reader:
        return reader.header, list(reader.events())


def same_screen(a: Screen, b: Screen) -> bool:
    return (
        (a.cols, a.rows) == (b.cols, b.rows) and a.styled_lines() == b.styled_lines() and a.cursor == b.cursor
    )


def clip_list(
    header: Header, events: list[Event], start: float, end: float | None = None, **kw: int
) -> tuple[Header, list[Event]]:
    h, it = clip_condensed(header, events, start, end, **kw)
    return h, list(it)


# -- portable dumps ----------------------------------------------------------------------------------


def test_portable_dump_has_no_c1_no_rep_and_no_colon_colours() -> None:
    screen = Screen(20, 4)
    screen.feed("\x1b[38;2;1;2;3mX\x1b[48;5;100mY\x1b[0m" + "-" * 5 + "\r\n\x1b[?1049hALT")
    dump = screen.state().dump
    assert "\x9b" in dump and re.search(r"\x1b\[\d+b", dump) and "38:2:" in dump  # what avt writes
    portable = portable_dump(dump)
    assert "\x9b" not in portable
    assert not re.search(r"\x1b\[\d+b", portable)
    assert "38;2;1;2;3" in portable and "48;5;100" in portable and ":" not in portable
    again = Screen(20, 4)
    again.feed(portable)
    assert same_screen(again, screen) and again.alternate


def test_portable_dump_replays_exactly_across_the_corpus(corpus: Path) -> None:
    for path in corpus_files(corpus):
        header, events = read(path)
        end = events[-1].time if events else 0.0
        for t in (end * 0.3, end * 0.7, end):
            screen = screen_at(header, events, t)
            direct, portable = Screen(screen.cols, screen.rows), Screen(screen.cols, screen.rows)
            direct.feed(screen.state().dump)
            portable.feed(portable_dump(screen.state().dump))
            assert same_screen(direct, portable), (path.name, t)


# -- clips -------------------------------------------------------------------------------------------


def test_clip_first_screen_equals_the_original_at_from_across_the_corpus(corpus: Path) -> None:
    for path in corpus_files(corpus):
        header, events = read(path)
        end = events[-1].time if events else 0.0
        for t in (0.0, end * 0.25, end * 0.5, end * 0.9, end):
            h, clipped = clip_list(header, events, t)
            assert same_screen(screen_at(h, clipped, 0.0), screen_at(header, events, t)), (path.name, t)
            # And the clip plays on to the same last screen.
            assert same_screen(screen_at(h, clipped, end), screen_at(header, events, end)), (path.name, t)


def test_clip_condenses_the_prelude_into_one_output_event_at_zero() -> None:
    header = Header(version=2, width=30, height=5)
    events = [
        Event(0.1, OUTPUT, "one\r\n"),
        Event(0.2, INPUT, "ls\r"),
        Event(0.3, MARKER, "old"),
        Event(0.4, OUTPUT, "\x1b[1mtwo\x1b[0m\r\n"),
        Event(2.0, OUTPUT, "three\r\n"),
        Event(3.0, MARKER, "new"),
        Event(4.0, OUTPUT, "four\r\n"),
    ]
    h, clipped = clip_list(header, events, 1.5, 3.5)
    assert [(e.time, e.code) for e in clipped] == [(0.0, OUTPUT), (0.5, OUTPUT), (1.5, MARKER)]
    assert screen_at(h, clipped, 0).lines()[:2] == ["one", "two"]
    assert screen_at(h, clipped, 9).lines()[:3] == ["one", "two", "three"]


def test_clip_from_zero_changes_nothing() -> None:
    header = Header(version=2, width=10, height=2, timestamp=1000)
    events = [Event(0.0, OUTPUT, "a"), Event(1.0, OUTPUT, "b")]
    h, clipped = clip_list(header, events, 0.0)
    assert clipped == events and h == header


def test_clip_header_has_the_size_and_timestamp_at_from() -> None:
    header = Header(version=2, width=80, height=24, timestamp=1_700_000_000)
    events = [Event(0.5, OUTPUT, "x"), Event(1.0, RESIZE, "100x30"), Event(5.0, OUTPUT, "y")]
    h, clipped = clip_list(header, events, 2.5)
    assert (h.width, h.height, h.timestamp) == (100, 30, 1_700_000_002)
    assert screen_at(h, clipped, 0).lines()[0] == "x"


def test_clip_starting_inside_an_escape_sequence_replays_the_rest_as_it_was() -> None:
    header = Header(version=2, width=20, height=3)
    big = "z" * 50 + "\r\n"
    events = [Event(0.1, OUTPUT, big), Event(0.2, OUTPUT, "hi \x1b[3"), Event(2.0, OUTPUT, "1mred\x1b[0m")]
    for every in (10, 10**9):  # with a snapshot before the split, and without any
        h, clipped = clip_list(header, events, 1.0, every_chars=every)
        assert clipped[-1] == Event(1.0, OUTPUT, "1mred\x1b[0m")
        last = screen_at(h, clipped, 5)
        assert same_screen(last, screen_at(header, events, 5))
        red = [r for r in last.styled_lines()[2] if r.text.startswith("red")]
        assert red and red[0].style.fg == 1


def test_clip_bounds_are_checked() -> None:
    header = Header(version=2, width=10, height=2)
    with pytest.raises(CastValueError):
        clip_condensed(header, [], 5.0, 1.0)
    with pytest.raises(CastValueError):
        clip_condensed(header, [], -1.0)


def test_exported_clip_shows_the_right_screen_in_a_stock_player(tmp_path: Path, scripted: Scripted) -> None:
    """asciinema 2.x (a stock player) reads the clip; its output, in an emulator, is the screen at --from."""
    asciinema = Path(sys.executable).with_name("asciinema")
    if not asciinema.exists():
        pytest.skip("asciinema (the stock player) is not installed in this environment")
    rec = scripted.recording
    at = scripted.zebra_time
    out = tmp_path / "clip.cast"
    export_recording(rec.header, rec.events, ExportFormat.CAST_V2, out, start=at)
    h, clipped = read(out)
    first = [e for e in clipped if e.time == 0.0 and e.code == OUTPUT]
    cat = subprocess.run([str(asciinema), "cat", str(out)], capture_output=True, timeout=60, check=True)
    vt = avt.Vt(h.width, h.height, scrollback_limit=0)
    vt.feed_str(cat.stdout.decode()[: len("".join(e.data for e in first))])
    expected = screen_at(rec.header, rec.events, at)
    assert [line.text.rstrip() for line in vt.view()] == expected.lines()
    assert "zebra-unicorn" in "\n".join(expected.lines())


# -- casts and text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 3])
def test_cast_exports_read_back_event_for_event(tmp_path: Path, version: int, scripted: Scripted) -> None:
    rec = scripted.recording
    out = tmp_path / "out.cast"
    fmt = ExportFormat.CAST_V2 if version == 2 else ExportFormat.CAST_V3
    result = export_recording(rec.header, rec.events, fmt, out)
    header, events = read(out)
    assert header.version == version and (header.width, header.height) == (
        rec.header.width,
        rec.header.height,
    )
    assert [(e.code, e.data) for e in events] == [(e.code, e.data) for e in rec.events]
    assert [round(e.time, 6) for e in events] == [round(e.time, 6) for e in rec.events]
    assert result.size == out.stat().st_size and result.events == len(events)


def test_txt_export_is_the_transcript_with_the_original_offsets(tmp_path: Path, scripted: Scripted) -> None:
    rec = scripted.recording
    whole = tmp_path / "all.txt"
    export_recording(rec.header, rec.events, ExportFormat.TXT, whole)
    text = whole.read_text()
    zebra = re.search(r"^\[\d\d:\d\d\] \$ echo zebra-unicorn$", text, re.M)
    assert zebra and re.search(r"^ +zebra-unicorn$", text, re.M)
    clip = tmp_path / "clip.txt"
    export_recording(rec.header, rec.events, ExportFormat.TXT, clip, start=scripted.red_time)
    clipped = clip.read_text()
    # Commands of the clip keep the offsets they have in the whole recording; earlier commands are
    # only part of the screen the clip starts from, not commands of their own.
    assert zebra.group(0) in clipped.splitlines()
    assert not re.search(r"^\[\d\d:\d\d\] \$ ls /nonexistent", clipped, re.M)


def test_command_markers_label_each_command_and_long_ones_are_cut(scripted: Scripted) -> None:
    rec = scripted.recording
    markers = command_markers(rec.header, rec.events)
    labels = [m.data for m in markers]
    assert "$ echo zebra-unicorn" in labels and all(m.code == MARKER for m in markers)
    long = "echo " + "x" * 200
    header = Header(version=2, width=300, height=5)
    events = [
        Event(0.0, OUTPUT, "\x1b]133;A\x07$ \x1b]133;B\x07"),
        Event(0.5, INPUT, "\r"),
        Event(0.6, OUTPUT, long + "\r\n\x1b]133;C\x07"),
        Event(0.7, OUTPUT, "\x1b]133;D;0\x07"),
    ]
    (cut,) = command_markers(header, events)
    assert len(cut.data) == MARKER_LABEL_CHARS and cut.data.endswith("…")


# -- HTML ----------------------------------------------------------------------------------------------


def _embedded_cast(page: str) -> list[list[object]]:
    m = re.search(r"AsciinemaPlayer\.create\(\{data: (\".*?\")\}, ", page, re.S)
    assert m, "cast data not found in the page"
    lines = json.loads(m.group(1)).splitlines()
    return [json.loads(line) for line in lines]


def test_player_assets_come_from_the_installed_package() -> None:
    assets = player_assets()
    assert "AsciinemaPlayer" in assets.js and ".ap-player" in assets.css
    assert re.fullmatch(r"\d+\.\d+\.\d+", assets.version)


def test_html_is_one_self_contained_page_with_the_cast_and_markers(scripted: Scripted) -> None:
    rec = scripted.recording
    page = render_html(rec.header, rec.events, title="<t> & co")
    assets = player_assets()
    assert assets.js in page and assets.css in page
    assert "<title>&lt;t&gt; &amp; co</title>" in page
    # Offline: nothing is fetched from anywhere.
    assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=", page)
    assert "http://" not in page.replace(assets.js, "").replace(assets.css, "")
    header, *events = _embedded_cast(page)
    assert isinstance(header, dict) and header["version"] == 2
    output = "".join(str(e[2]) for e in events if e[1] == "o")
    assert output == "".join(e.data for e in rec.events if e.code == OUTPUT)
    assert any(e[1] == "m" and e[2] == "$ echo zebra-unicorn" for e in events)
    # </script> in the recording cannot end the script element.
    nasty = render_html(Header(version=2, width=10, height=2), [Event(0, OUTPUT, "</script><b>")], title="x")
    assert "</script><b>" not in nasty and _embedded_cast(nasty)[1][2] == "</script><b>"


def test_html_refuses_a_cast_over_its_size_limit() -> None:
    header = Header(version=2, width=10, height=2)
    events = [Event(0, OUTPUT, "x" * 1000)]
    with pytest.raises(ExportError, match="HTML limit"):
        render_html(header, events, title="t", max_cast_bytes=500)
    assert render_html(header, events, title="t", max_cast_bytes=2000)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is not installed (scripts/install-test-deps.sh installs it as root)")


def headless(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=5000",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        timeout=CHROMIUM_TIMEOUT,
    )


def screenshot(page: Path, tmp_path: Path) -> Image.Image:
    png = tmp_path / f"{page.stem}.png"
    done = headless(page, tmp_path, f"--screenshot={png}", "--window-size=1000,700")
    assert png.is_file(), done.stderr.decode(errors="replace")[-2000:]
    return Image.open(png).convert("RGB")


def red_pixels(img: Image.Image) -> int:
    data = img.tobytes()
    return sum(1 for i in range(0, len(data), 3) if data[i] > 235 and data[i + 1] < 30 and data[i + 2] < 30)


def test_html_export_plays_in_headless_chromium(tmp_path: Path) -> None:
    header = Header(version=2, width=60, height=12, title="red block")
    block = "".join(f"{RED}{' ' * 30}\x1b[0m row {i}\r\n" for i in range(6))
    events = [Event(0.3, OUTPUT, "$ draw\r\n"), Event(0.6, OUTPUT, block), Event(0.8, MARKER, "drawn")]
    playing = tmp_path / "playing.html"
    idle = tmp_path / "idle.html"
    export_recording(header, events, ExportFormat.HTML, playing, autoplay=True)
    export_recording(header, events, ExportFormat.HTML, idle, autoplay=False)
    shot = screenshot(playing, tmp_path)
    # Not blank: the page has structure, and the terminal drew the red block the recording printed.
    assert max(ImageStat.Stat(shot).stddev) > 10
    assert red_pixels(shot) > 5000
    # Control: the same page without autoplay shows the start overlay and none of the output.
    assert red_pixels(screenshot(idle, tmp_path)) == 0


def test_html_markers_appear_on_the_seek_bar_in_chromium(tmp_path: Path) -> None:
    header = Header(version=2, width=40, height=5)
    events = [
        Event(0.0, OUTPUT, "start\r\n"),
        Event(1.0, MARKER, "first"),
        Event(3.0, MARKER, "second"),
        Event(4.0, OUTPUT, "end\r\n"),
    ]
    page = tmp_path / "markers.html"
    export_recording(header, events, ExportFormat.HTML, page)
    dom = headless(page, tmp_path, "--dump-dom").stdout.decode()
    positions = re.findall(r'class="ap-marker-container[^"]*" style="left: ([\d.]+)%', dom)
    assert [float(p) for p in positions] == [25.0, 75.0]
    assert "first" in dom and "second" in dom


# -- bundles -----------------------------------------------------------------------------------------


def test_bundle_members_are_present_and_the_manifest_sums_verify(tmp_path: Path, scripted: Scripted) -> None:
    rec = scripted.recording
    out = tmp_path / "b.zip"
    meta = {"connection": {"id": 7, "principal": "alice"}}
    export_recording(rec.header, rec.events, ExportFormat.BUNDLE, out, metadata=meta, title="s")
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert set(names) == {BUNDLE_CAST, BUNDLE_HTML, BUNDLE_TRANSCRIPT, BUNDLE_METADATA, BUNDLE_MANIFEST}
        manifest = zf.read(BUNDLE_MANIFEST).decode().splitlines()
        listed = {}
        for line in manifest:
            digest, name = line.split("  ", 1)
            listed[name] = digest
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest
        assert set(listed) == set(names) - {BUNDLE_MANIFEST}
        metadata = json.loads(zf.read(BUNDLE_METADATA))
        assert metadata["connection"] == {"id": 7, "principal": "alice"}
        assert metadata["export"]["from"] == 0.0
        assert "$ echo zebra-unicorn" in zf.read(BUNDLE_TRANSCRIPT).decode()
        _, cast_events = read_bytes(zf.read(BUNDLE_CAST))
        assert len(cast_events) == len(rec.events)
        zf.extractall(tmp_path / "x")
    assert verify_bundle(out) == listed
    sha256sum = shutil.which("sha256sum")
    if sha256sum:  # the manifest is in the format auditors' tools check
        check = subprocess.run([sha256sum, "-c", BUNDLE_MANIFEST], cwd=tmp_path / "x", capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr


def read_bytes(data: bytes) -> tuple[Header, list[Event]]:
    with open_cast(io.BytesIO(data)) as reader:
        return reader.header, list(reader.events())


def test_a_tampered_bundle_fails_verification(tmp_path: Path) -> None:
    header = Header(version=2, width=10, height=2)
    data = bundle_bytes(header, [Event(0, OUTPUT, "hello")], metadata={}, title="t")
    good = tmp_path / "good.zip"
    good.write_bytes(data)
    verify_bundle(good)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            body = src.read(name)
            dst.writestr(name, body.replace(b"hello", b"HELLO") if name == BUNDLE_CAST else body)
    with pytest.raises(ExportError, match=BUNDLE_CAST):
        verify_bundle(bad)
    extra = tmp_path / "extra.zip"
    shutil.copy(good, extra)
    with zipfile.ZipFile(extra, "a") as zf:
        zf.writestr("smuggled.txt", "x")
    with pytest.raises(ExportError, match="not in the manifest"):
        verify_bundle(extra)
    with pytest.raises(ExportError):
        verify_bundle(tmp_path / "missing.zip")


# -- writing ------------------------------------------------------------------------------------------


def test_unwritable_output_is_an_export_error_and_leaves_nothing_behind(tmp_path: Path) -> None:
    header = Header(version=2, width=10, height=2)
    with pytest.raises(ExportError, match="cannot write"):
        export_recording(header, [], ExportFormat.CAST_V2, tmp_path / "no" / "such" / "dir.cast")
    target = tmp_path / "ro"
    target.mkdir()
    (target / "x.cast").mkdir()  # a directory where the file should go
    with pytest.raises(ExportError, match="cannot write"):
        export_recording(header, [], ExportFormat.CAST_V2, target / "x.cast")
    assert [p.name for p in target.iterdir()] == ["x.cast"]


def test_unknown_format_is_an_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown export format"):
        export_recording(Header(version=2, width=1, height=1), [], "gif", tmp_path / "x")


def test_every_corpus_file_exports_in_every_format(corpus: Path, tmp_path: Path) -> None:
    for path in corpus_files(corpus):
        header, events = read(path)
        end = events[-1].time if events else 0.0
        for fmt in ExportFormat:
            for start, stop in ((0.0, None), (end / 3, end * 2 / 3)):
                out = tmp_path / f"{path.stem}-{fmt.value}-{start:.2f}"
                result = export_recording(header, events, fmt, out, start=start, end=stop)
                assert out.stat().st_size == result.size, (path.name, fmt)
                assert result.size > 0 or fmt is ExportFormat.TXT  # a clip with no output has no text
                if fmt in (ExportFormat.CAST_V2, ExportFormat.CAST_V3):
                    h, clipped = read(out)
                    assert same_screen(screen_at(h, clipped, 0), screen_at(header, events, start))
                elif fmt is ExportFormat.BUNDLE:
                    verify_bundle(out)
        assert cast_bytes(header, events, 3)


# -- redaction ------------------------------------------------------------------------------------

SECRET = "hunter2-SECRET-0042"


def _split_secret_events() -> list[Event]:
    return [
        Event(0.1, OUTPUT, "$ echo $TOKEN\r\n"),
        Event(0.2, OUTPUT, "token=" + SECRET[:7]),
        Event(0.25, INPUT, "x"),
        Event(0.3, OUTPUT, SECRET[7:] + "\r\n$ "),
        Event(0.4, OUTPUT, "and again " + SECRET + "\r\n"),
    ]


def test_redaction_masks_a_secret_split_across_output_events() -> None:
    events = _split_secret_events()
    rules = compile_redactions([r"hunter\d-[\w-]+", r"token="])
    masked, report = redact(events, rules, "ab" * 32)
    text = "".join(e.data for e in masked if e.code == OUTPUT)
    assert "SECRET" not in text and "token=" not in text
    # Same lengths, same times, input untouched: only the matching characters changed.
    assert [(e.time, e.code, len(e.data)) for e in masked] == [(e.time, e.code, len(e.data)) for e in events]
    assert masked[2] == events[2]
    assert text.count(REDACTION_MASK * len(SECRET)) == 2
    assert report.as_json() == {
        "original_sha256": "ab" * 32,
        "rules": [r"hunter\d-[\w-]+", "token="],
        "count": 3,
        "matches": [
            {"time": 0.2, "rule": 0, "length": len(SECRET)},
            {"time": 0.2, "rule": 1, "length": 6},
            {"time": 0.4, "rule": 0, "length": len(SECRET)},
        ],
    }


def test_redacted_exports_carry_the_record_and_no_secret(tmp_path: Path) -> None:
    header = Header(2, 80, 24)
    rules = compile_redactions([r"hunter\d-[\w-]+"])
    for fmt in ExportFormat:
        out = tmp_path / f"out.{fmt.value}"
        result = export_recording(
            header, _split_secret_events(), fmt, out, redact_rules=rules, original_sha256="c" * 64
        )
        assert result.redactions is not None and len(result.redactions.matches) == 2
        data = out.read_bytes()
        if fmt is ExportFormat.BUNDLE:
            assert set(verify_bundle(out)) >= {BUNDLE_CAST, BUNDLE_REDACTIONS}
            with zipfile.ZipFile(out) as zf:
                record = json.loads(zf.read(BUNDLE_REDACTIONS))
                assert all(b"SECRET" not in zf.read(n) for n in zf.namelist())
            assert record["original_sha256"] == "c" * 64 and record["count"] == 2
        else:
            assert b"SECRET" not in data
        if fmt in (ExportFormat.CAST_V2, ExportFormat.CAST_V3):
            with open_cast(out) as reader:
                assert reader.header.context["redactions"]["matches"][0] == {
                    "time": 0.2,
                    "rule": 0,
                    "length": len(SECRET),
                }


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        (["(unclosed"], "invalid redaction pattern '(unclosed'"),
        (["a*"], "matches the empty string"),
        (["x"] * (MAX_REDACTION_RULES + 1), f"{MAX_REDACTION_RULES}-rule limit"),
        (["x" * (MAX_REDACTION_PATTERN + 1)], "exceeds"),
    ],
)
def test_bad_redaction_patterns_are_refused(patterns: list[str], message: str) -> None:
    with pytest.raises(InvalidRedaction, match=re.escape(message)):
        compile_redactions(patterns)
