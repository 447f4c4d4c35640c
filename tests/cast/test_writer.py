"""The asciicast writer: exact bytes, spec conformance, round trips, and asciinema reading our files."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.cast import MAX_TIME_SECONDS, CastWriter, Event, Header, format_time, open_cast
from recorder.errors import CastLineTooLong, CastValueError, CastWriteError

from .conftest import REPO

FULL = Header(
    version=2,
    width=120,
    height=40,
    timestamp=1_700_000_000,
    idle_time_limit=2.5,
    command="/bin/bash -l",
    title="démo ✓",
    env={"SHELL": "/bin/bash", "TERM": "xterm-256color"},
    theme={"fg": "#d0d0d0", "bg": "#212121", "palette": ":".join(["#151515"] * 16)},
    extra={"recorder": {"principal": "alice", "runtime_arn": "arn:aws:x"}, "duration": 9.5},
)
EVENTS = [
    Event(0.0, "o", "plain\r\n"),
    Event(0.123456, "o", "żółw 🐢 全角\x1b[1;31mred\x1b[0m\x07"),
    Event(0.5, "i", "ls -la\r"),
    Event(1.0, "r", "100x30"),
    Event(1.000001, "m", "a label"),
    Event(3600.25, "o", 'quotes " and \\ backslash \x00 \x7f \u2028'),
    Event(3600.25, "x", "0"),
]


def header(version: int, **changes: object) -> Header:
    return dataclasses.replace(FULL, version=version, **changes)  # type: ignore[arg-type]


def write(version: int, events: list[Event], hdr: Header | None = None) -> tuple[bytes, list[bytes]]:
    buf = io.BytesIO()
    writer = CastWriter(buf, hdr or header(version), version)
    returned = [writer.write_header()]
    returned += [writer.write_event(e.time, e.code, e.data) for e in events]
    return buf.getvalue(), returned


@pytest.mark.parametrize("version", [2, 3])
def test_round_trip_reads_back_header_and_events(version: int) -> None:
    hdr = header(version, term_type="xterm-ghostty" if version == 3 else None)
    data, _ = write(version, EVENTS, hdr)
    with open_cast(io.BytesIO(data)) as reader:
        assert reader.version == version
        assert reader.header == hdr
        assert list(reader.events()) == EVENTS
        assert reader.problems == []


def test_v3_keeps_unknown_term_keys_through_extra() -> None:
    hdr = header(3, term_type="xterm", extra={"term": {"version": "VTE(7802)"}})
    data, returned = write(3, [], hdr)
    term = json.loads(returned[0])["term"]
    assert term == {"cols": 120, "rows": 40, "type": "xterm", "version": "VTE(7802)", "theme": FULL.theme}
    assert open_cast(io.BytesIO(data)).header == hdr


def test_returned_bytes_are_exactly_the_file() -> None:
    data, returned = write(2, EVENTS)
    assert b"".join(returned) == data
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in returned)


def test_v2_header_is_spec_shaped() -> None:
    _, returned = write(2, [])
    obj = json.loads(returned[0])
    assert list(obj)[:3] == ["version", "width", "height"]
    assert obj["version"] == 2 and obj["timestamp"] == 1_700_000_000
    assert obj["theme"] == FULL.theme and obj["recorder"]["principal"] == "alice"
    assert "term" not in obj and "term_type" not in obj
    assert "démo ✓".encode() in returned[0]  # UTF-8 as is, not \u escapes


def test_v3_header_is_spec_shaped() -> None:
    _, returned = write(3, [], header(3, term_type="xterm-256color"))
    obj = json.loads(returned[0])
    assert list(obj)[:2] == ["version", "term"]
    assert obj["term"]["cols"] == 120 and obj["term"]["type"] == "xterm-256color"
    assert "width" not in obj and "theme" not in obj and obj["term"]["theme"] == FULL.theme


def test_header_without_optional_fields_is_minimal() -> None:
    _, returned = write(2, [], Header(version=2, width=80, height=24))
    assert returned[0] == b'{"version": 2, "width": 80, "height": 24}\n'


def test_v2_writes_absolute_times_and_v3_intervals() -> None:
    events = [Event(0.5, "o", "a"), Event(1.25, "o", "b"), Event(1.25, "o", "c"), Event(10.0, "o", "d")]
    _, v2 = write(2, events)
    _, v3 = write(3, events)
    assert [json.loads(line)[0] for line in v2[1:]] == [0.5, 1.25, 1.25, 10.0]
    assert [json.loads(line)[0] for line in v3[1:]] == [0.5, 0.75, 0.0, 8.75]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0.0"),
        (0.000001, "0.000001"),
        (0.0000004, "0.0"),
        (0.0000006, "0.000001"),
        (1.5, "1.5"),
        (1.234567, "1.234567"),
        (12.3, "12.3"),
        (123456789.000001, "123456789.000001"),
        (1e-5, "0.00001"),
    ],
)
def test_times_are_fixed_notation_rounded_to_microseconds(seconds: float, text: str) -> None:
    _, returned = write(2, [Event(seconds, "o", "x")])
    assert returned[1].startswith(f"[{text}, ".encode())
    assert format_time(round(seconds * 1_000_000)) == text


def test_v3_times_do_not_drift_over_many_events() -> None:
    times, t = [], 0.0
    for _ in range(50_000):
        t += 0.1  # drifting float arithmetic, as a caller's clock sums might be
        times.append(t)
    data, _ = write(3, [Event(x, "o", "") for x in times])
    read = [e.time for e in open_cast(io.BytesIO(data)).events()]
    assert read == [round(x * 1_000_000) / 1_000_000 for x in times]


def test_control_characters_are_escaped_and_utf8_kept() -> None:
    text = "".join(chr(c) for c in range(0x20)) + "é€🐢\x7f"
    _, returned = write(2, [Event(1.0, "o", text)])
    line = returned[1]
    assert not any(b < 0x20 for b in line[:-1])
    assert "é€🐢".encode() in line and b"\\u001b" in line and b"\\r\\n" not in line
    assert json.loads(line)[2] == text


def test_every_code_point_is_written_as_the_standard_library_escapes_it() -> None:
    # The writer escapes through orjson for speed; the bytes must be what json's own escaper makes,
    # so files stay byte-identical whichever path wrote them. Every code point but the surrogates,
    # in events of 4,096 (a 64-bit fast path in the escaper sees each kind of neighbour).
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    events = [Event(1.0, "o", "".join(map(chr, points[i : i + 4096]))) for i in range(0, len(points), 4096)]
    _, returned = write(2, events)
    for event, line in zip(events, returned[1:], strict=True):
        assert line == f'[1.0, "o", {json.encoder.encode_basestring(event.data)}]\n'.encode()  # type: ignore[attr-defined]


def test_lone_surrogates_become_replacement_characters() -> None:
    data, returned = write(2, [Event(1.0, "o", "a\ud800b\udc00")])
    assert json.loads(returned[1])[2] == "a\ufffdb\ufffd"
    assert list(open_cast(io.BytesIO(data)).events())[0].data == "a\ufffdb\ufffd"


def test_helpers_format_resize_exit_and_marker_data() -> None:
    buf = io.BytesIO()
    writer = CastWriter(buf, Header(version=2, width=80, height=24))
    writer.write_header()
    writer.write_output(0.1, "out")
    writer.write_input(0.2, "in")
    writer.write_resize(0.3, 132, 43)
    writer.write_marker(0.4, "checkpoint 1")
    writer.write_marker(0.5)
    writer.write_exit(0.6, 130)
    assert [(e.code, e.data) for e in open_cast(io.BytesIO(buf.getvalue())).events()] == [
        ("o", "out"),
        ("i", "in"),
        ("r", "132x43"),
        ("m", "checkpoint 1"),
        ("m", ""),
        ("x", "130"),
    ]
    assert writer.events_written == 6 and writer.bytes_written == len(buf.getvalue())
    assert writer.last_time == 0.6


@pytest.mark.parametrize("code", ["", "oo", "O", "1", "é", "-", None, 5, ["o"]])
def test_bad_event_codes_are_refused(code: object) -> None:
    buf = io.BytesIO()
    writer = CastWriter(buf, Header(version=2, width=80, height=24))
    writer.write_header()
    before = buf.getvalue()
    with pytest.raises(CastValueError, match="event code"):
        writer.write_event(1.0, code, "x")  # type: ignore[arg-type]
    assert buf.getvalue() == before


@pytest.mark.parametrize("time", [float("nan"), float("inf"), -0.5, MAX_TIME_SECONDS * 2, True, "1.0", None])
def test_bad_event_times_are_refused(time: object) -> None:
    writer = CastWriter(io.BytesIO(), Header(version=2, width=80, height=24))
    writer.write_header()
    with pytest.raises(CastValueError, match="event time"):
        writer.write_event(time, "o", "x")  # type: ignore[arg-type]


def test_non_string_data_is_refused() -> None:
    writer = CastWriter(io.BytesIO(), Header(version=2, width=80, height=24))
    writer.write_header()
    with pytest.raises(CastValueError, match="data must be a string"):
        writer.write_event(1.0, "o", b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [2, 3])
def test_time_going_backwards_is_clamped_and_counted(version: int) -> None:
    buf = io.BytesIO()
    writer = CastWriter(buf, Header(version=version, width=80, height=24), version)
    writer.write_header()
    writer.write_output(2.0, "a")
    line = writer.write_output(1.0, "b")
    assert json.loads(line)[0] == (2.0 if version == 2 else 0.0)
    assert writer.clamped_times == 1
    assert [e.time for e in open_cast(io.BytesIO(buf.getvalue())).events()] == [2.0, 2.0]


def test_event_line_over_the_limit_raises_and_writes_nothing() -> None:
    buf = io.BytesIO()
    writer = CastWriter(buf, Header(version=2, width=80, height=24), max_line_bytes=50)
    writer.write_header()
    before = buf.getvalue()
    ok = writer.write_output(1.0, "x" * (50 - len('[1.0, "o", ""]')))
    assert len(ok) == 51
    with pytest.raises(CastLineTooLong) as info:
        writer.write_output(2.0, "x" * 100)
    assert info.value.limit == 50 and buf.getvalue() == before + ok


def test_header_over_the_limit_raises() -> None:
    writer = CastWriter(
        io.BytesIO(), Header(version=2, width=80, height=24, title="t" * 100), max_header_bytes=64
    )
    with pytest.raises(CastLineTooLong):
        writer.write_header()


@pytest.mark.parametrize(
    ("hdr", "message"),
    [
        (Header(version=2, width=80, height=24, extra={"bad": object()}), "cannot be written as JSON"),
        (Header(version=2, width=80, height=24, idle_time_limit=float("nan")), "idle_time_limit"),
        (Header(version=2, width=80, height=24, timestamp=1.5), "timestamp"),  # type: ignore[arg-type]
        (Header(version=2, width=80, height=24, title="\ud800"), "cannot be written as JSON"),
    ],
)
def test_unwritable_headers_are_refused(hdr: Header, message: str) -> None:
    with pytest.raises(CastValueError, match=message):
        CastWriter(io.BytesIO(), hdr).write_header()


def test_bad_dimensions_and_versions_are_refused() -> None:
    with pytest.raises(CastValueError, match="width"):
        CastWriter(io.BytesIO(), Header(version=2, width=-1, height=24))
    with pytest.raises(CastValueError, match="v2 or v3"):
        CastWriter(io.BytesIO(), Header(version=1, width=80, height=24), version=1)


def test_order_of_calls_is_enforced() -> None:
    writer = CastWriter(io.BytesIO(), Header(version=2, width=80, height=24))
    with pytest.raises(CastWriteError, match="write_header"):
        writer.write_output(0.0, "x")
    writer.write_header()
    with pytest.raises(CastWriteError, match="already written"):
        writer.write_header()


def test_flush_fsync_and_close_on_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "rec.cast"
    writer = CastWriter(open(path, "wb"), Header(version=2, width=80, height=24))
    header_line = writer.write_header()
    writer.write_output(0.5, "hi")
    writer.flush(fsync=True)
    assert path.read_bytes().startswith(header_line)
    writer.close(fsync=True)
    writer.close()  # idempotent
    with pytest.raises(CastWriteError, match="closed"):
        writer.write_output(1.0, "late")
    assert [e.data for e in open_cast(path).events()] == ["hi"]


def test_disk_full_raises_cast_write_error() -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full is not available on this system")
    writer = CastWriter(open("/dev/full", "wb", buffering=0), Header(version=2, width=80, height=24))
    with pytest.raises(CastWriteError, match="cannot write recording"):
        writer.write_header()
    assert writer.bytes_written == 0


def test_unbuffered_raw_file_gets_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "raw.cast"
    with CastWriter(open(path, "wb", buffering=0), Header(version=3, width=80, height=24), 3) as writer:
        lines = [writer.write_header(), writer.write_output(0.25, "x" * 100_000)]
    assert path.read_bytes() == b"".join(lines)


_TIMES = st.lists(st.integers(min_value=0, max_value=10**9), min_size=0, max_size=30)
_CODES = st.sampled_from("oirmxabz")


@settings(max_examples=200, deadline=None)
@given(
    version=st.sampled_from([2, 3]),
    steps=_TIMES,
    codes=st.lists(_CODES, min_size=30, max_size=30),
    texts=st.lists(st.text(max_size=40), min_size=30, max_size=30),
    scale=st.sampled_from([1e-6, 1e-3, 0.37, 1.0]),
)
def test_property_round_trip_arbitrary_text_codes_and_times(
    version: int, steps: list[int], codes: list[str], texts: list[str], scale: float
) -> None:
    times, total = [], 0.0
    for step in steps:
        total = min(total + step * scale, MAX_TIME_SECONDS)
        times.append(total)
    events = [Event(t, c, d) for t, c, d in zip(times, codes, texts, strict=False)]
    data, returned = write(version, events, Header(version=version, width=80, height=24))
    assert b"".join(returned) == data
    assert not re.search(rb"^\[[^,]*e", data, re.MULTILINE)  # never exponent notation
    read = list(open_cast(io.BytesIO(data)).events())
    assert read == [Event(round(e.time * 1_000_000) / 1_000_000, e.code, e.data) for e in events]


# -- stock player compatibility ------------------------------------------------------------------


def test_asciinema_cat_reproduces_our_v2_output_byte_for_byte(tmp_path: Path) -> None:
    exe = REPO / ".venv" / "bin" / "asciinema"
    if not exe.exists():
        pytest.skip(f"asciinema CLI not installed at {exe} (pip install -e '.[dev]')")
    outputs = [e.data for e in EVENTS if e.code == "o"]
    outputs += [
        "".join(chr(c) for c in range(1, 0x20)),
        "\u200b\ufeff\ufffd tabs\tand\r\nlines\n",
        "x" * 70_000,
    ]
    path = tmp_path / "ours.cast"
    with CastWriter(open(path, "wb"), FULL) as writer:
        writer.write_header()
        for i, text in enumerate(outputs):
            writer.write_output(i * 0.5, text)
            writer.write_input(i * 0.5 + 0.1, "not shown by cat")
        writer.write_resize(100.0, 90, 30)
        writer.write_marker(100.5, "m")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    # A new session has no controlling terminal, so `cat` skips putting /dev/tty in raw mode.
    done = subprocess.run(
        [str(exe), "cat", str(path)], capture_output=True, env=env, timeout=30, start_new_session=True
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout == "".join(outputs).encode("utf-8")
