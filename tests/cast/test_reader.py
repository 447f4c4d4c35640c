"""The asciicast reader: the real corpus, every reported problem, the limits, and a fuzzer."""

from __future__ import annotations

import io
import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.cast import (
    MAX_LINE_BYTES,
    CastWriter,
    Event,
    Header,
    Reason,
    cast_summary,
    open_cast,
    read_header,
)
from recorder.errors import CastError, CastFormatError, CastTooLarge, CastValueError

from .conftest import CORPUS_FILES, REPO

V2 = {"version": 2, "width": 80, "height": 24}
V3 = {"version": 3, "term": {"cols": 80, "rows": 24}}


def cast(header: dict[str, Any], *lines: str | bytes, end: bytes = b"\n") -> bytes:
    """A recording from a header object and raw event lines (joined by newlines)."""
    parts = [json.dumps(header).encode()] + [x.encode() if isinstance(x, str) else x for x in lines]
    return b"\n".join(parts) + end


def read_all(data: bytes, **limits: int) -> tuple[list[Event], Any]:
    reader = open_cast(io.BytesIO(data), **limits)
    return list(reader.events()), reader


def reasons(reader: Any) -> list[tuple[int, str, str]]:
    return [(p.line, p.kind.value, p.reason.value) for p in reader.problems]


# -- the corpus -------------------------------------------------------------------------------


def _expected_events(path: Path) -> list[tuple[Decimal, str, str]]:
    """An independent reading: Decimal times (absolute), straight from the JSON."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        doc = json.loads(text, parse_float=Decimal)
        out, total = [], Decimal(0)
        for delay, data in doc["stdout"]:
            total += delay
            out.append((total, "o", data))
        return out
    lines = text.split("\n")
    version = json.loads(lines[0])["version"]
    out, total = [], Decimal(0)
    for line in lines[1:]:
        if not line.strip() or line.startswith("#"):
            continue
        time, code, data = json.loads(line, parse_float=Decimal)
        total = total + time if version == 3 else Decimal(time)
        out.append((total, code, data))
    return out


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file_reads_with_exact_times_and_data(corpus: Path, name: str) -> None:
    path = corpus / name
    with open_cast(path) as reader:
        events = list(reader.events())
        assert reader.bytes_read == path.stat().st_size
    expected = _expected_events(path)
    assert len(events) == len(expected) > 0
    for event, (time, code, data) in zip(events, expected, strict=True):
        assert (event.code, event.data) == (code, data)
        assert event.time == float(time)
    assert all(a.time <= b.time for a, b in zip(events, events[1:], strict=False))


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_problems_are_exactly_the_blank_lines(corpus: Path, name: str) -> None:
    path = corpus / name
    with open_cast(path) as reader:
        list(reader.events())
    lines = path.read_bytes().split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    if name.endswith(".json"):
        expected: list[tuple[int, str, str]] = []
        comments = 0
    else:
        expected = [(n, "skipped", "blank_line") for n, line in enumerate(lines, 1) if not line.strip()]
        comments = sum(1 for line in lines[1:] if line.startswith(b"#"))
    assert reasons(reader) == expected
    assert reader.comments == comments


def test_blank_lines_file_reports_its_five_blank_lines(corpus: Path) -> None:
    with open_cast(corpus / "server__blank-lines-v2.cast") as reader:
        events = list(reader.events())
    assert [e.data for e in events] == ["foo bar", "baz qux", "żółć jaźń"]
    assert [(p.line, p.reason) for p in reader.problems] == [(n, Reason.BLANK_LINE) for n in (4, 6, 7, 8, 9)]


def test_full_v1_reads_with_accumulated_delays(corpus: Path) -> None:
    with open_cast(corpus / "asciinema__full-v1.json") as reader:
        events = list(reader.events())
        header = reader.header
    assert reader.version == 1
    assert (header.width, header.height, header.command, header.title) == (100, 50, "/bin/bash", None)
    assert header.env == {"TERM": "xterm-256color", "SHELL": "/bin/bash"}
    assert header.extra == {"duration": 10.5}
    assert events == [Event(0.000001, "o", "ż"), Event(10.000001, "o", "ółć"), Event(10.500001, "o", "\r\n")]


def test_full_v3_header_maps_term_and_keeps_unknown_term_keys(corpus: Path) -> None:
    header = read_header(corpus / "server__full-v3.cast")
    assert header.version == 3
    assert (header.width, header.height, header.term_type) == (96, 26, "xterm-ghostty")
    assert header.extra == {"term": {"version": "ghostty 1.1.3-889478f-nix"}}
    assert header.theme is not None and header.theme["fg"] == "#aaaaaa"
    assert (header.timestamp, header.idle_time_limit, header.title) == (1744302022, 2.5, "bashing :)")
    assert header.env == {"TERM": "xterm-ghostty", "SHELL": "/usr/bin/fish"}


def test_null_env_values_are_kept(corpus: Path) -> None:
    assert read_header(corpus / "asciinema__nulls-v2.cast").env == {"TERM": None, "SHELL": "/bin/bash"}


def test_big_v3_file_streams_all_events(corpus: Path) -> None:
    path = corpus / "server__big-v3.cast"
    summary = cast_summary(path)
    assert summary.size == path.stat().st_size == summary.complete_bytes
    assert summary.events == path.read_bytes().count(b"\n") - 1
    assert summary.problem_count == 0 and not summary.truncated
    with open_cast(path) as reader:
        total = sum(len(e.data) for e in reader.events())
    expected = sum(len(json.loads(line)[2]) for line in path.read_text(encoding="utf-8").splitlines()[1:])
    assert total == expected


def _asciinema_cat(path: Path) -> bytes:
    exe = REPO / ".venv" / "bin" / "asciinema"
    if not exe.exists():
        pytest.skip(f"asciinema CLI not installed at {exe} (pip install -e '.[dev]')")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    # A new session has no controlling terminal, so `cat` skips putting /dev/tty in raw mode.
    done = subprocess.run(
        [str(exe), "cat", str(path)], capture_output=True, env=env, timeout=30, start_new_session=True
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


# asciinema 2.4 reads v1 and v2 only, and stops at the first blank line, so that file is left out.
CAT_FILES = [n for n in CORPUS_FILES if not n.endswith("v3.cast") and "blank-lines" not in n]


@pytest.mark.parametrize("name", CAT_FILES)
def test_output_matches_asciinema_cat(corpus: Path, name: str) -> None:
    with open_cast(corpus / name) as reader:
        ours = "".join(e.data for e in reader.events() if e.code == "o").encode()
    assert ours == _asciinema_cat(corpus / name)


# -- sources ------------------------------------------------------------------------------------


SAMPLE = cast(V2, '[0.5, "o", "żółw\\r\\n"]', '[1.5, "i", "ls"]')


def test_path_binary_and_text_sources_read_the_same(tmp_path: Path) -> None:
    path = tmp_path / "a.cast"
    path.write_bytes(SAMPLE)
    results = []
    for source in (path, str(path), io.BytesIO(SAMPLE), io.StringIO(SAMPLE.decode())):
        with open_cast(source) as reader:
            results.append((reader.header, list(reader.events())))
    with open(path, encoding="utf-8") as text, open_cast(text) as reader:
        results.append((reader.header, list(reader.events())))
    assert all(r == results[0] for r in results)
    assert results[0][1] == [Event(0.5, "o", "żółw\r\n"), Event(1.5, "i", "ls")]


def test_missing_file_raises_cast_error(tmp_path: Path) -> None:
    with pytest.raises(CastError, match="cannot open recording"):
        open_cast(tmp_path / "nope.cast")


def test_events_can_be_read_again_from_a_seekable_source() -> None:
    reader = open_cast(io.BytesIO(cast(V2, '[1, "o", "a"]', "", '[2, "o", "b"]')))
    first = list(reader.events())
    assert reasons(reader) == [(3, "skipped", "blank_line")]
    assert list(reader.events()) == first
    assert reasons(reader) == [(3, "skipped", "blank_line")]


class _OneWay(io.RawIOBase):
    """A non-seekable stream that serves ``data`` and counts what was pulled from it."""

    def __init__(self, data: bytes | None = None, *, endless: bool = False) -> None:
        self._data = data or b""
        self._endless = endless
        self._n = 0
        self.pulled = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._endless and len(self._data) < len(buffer):
            # Generate events forever: a file much larger than anything we could hold.
            self._data += b"".join(b'[%d.5, "o", "%s"]\n' % (self._n + i, b"x" * 1000) for i in range(100))
            self._n += 100
        size = min(len(buffer), len(self._data))
        buffer[:size] = self._data[:size]
        self._data = self._data[size:]
        self.pulled += size
        return size


def test_non_seekable_source_reads_events_once() -> None:
    reader = open_cast(io.BufferedReader(_OneWay(SAMPLE)))
    assert len(list(reader.events())) == 2
    with pytest.raises(CastError, match="only once"):
        reader.events()


def test_events_stream_without_reading_ahead() -> None:
    header = json.dumps(V2).encode() + b"\n"
    raw = _OneWay(header, endless=True)
    reader = open_cast(io.BufferedReader(raw, buffer_size=8192))
    events = reader.events()
    taken = [next(events) for _ in range(1000)]
    assert taken[-1].time == 999.5
    # ~1 MB of events consumed; the endless source was read only a buffer beyond that.
    assert raw.pulled < reader.bytes_read + 64 * 1024


def test_read_header_reads_only_the_first_line() -> None:
    raw = _OneWay(json.dumps(V3).encode() + b"\n", endless=True)
    reader = open_cast(io.BufferedReader(raw, buffer_size=4096))
    assert reader.header.width == 80
    assert raw.pulled <= 4096 * 2


# -- reported problems -----------------------------------------------------------------------


def test_v3_comment_lines_are_counted_and_not_reported() -> None:
    events, reader = read_all(cast(V3, "# hello", '[0.5, "o", "a"]', "#", '[0.5, "o", "b"]'))
    assert [e.time for e in events] == [0.5, 1.0]
    assert reader.problems == [] and reader.comments == 2


def test_v2_comment_line_is_reported_not_used() -> None:
    events, reader = read_all(cast(V2, "# not in v2", '[0.5, "o", "a"]'))
    assert len(events) == 1
    assert reasons(reader) == [(2, "skipped", "comment_not_allowed")]


def test_blank_and_whitespace_lines_are_reported_in_v3() -> None:
    events, reader = read_all(cast(V3, "", "  \t", "\r", '[1, "o", "a"]'))
    assert events == [Event(1.0, "o", "a")]
    assert reasons(reader) == [
        (2, "skipped", "blank_line"),
        (3, "skipped", "blank_line"),
        (4, "skipped", "blank_line"),
    ]


def test_crlf_line_endings_are_read() -> None:
    data = json.dumps(V2).encode() + b'\r\n[1, "o", "a"]\r\n[2, "o", "b"]\r\n'
    events, reader = read_all(data)
    assert [e.data for e in events] == ["a", "b"] and reader.problems == []


def test_malformed_lines_are_each_reported_with_their_reason() -> None:
    lines = [
        '[1.0, "o", "ok"]',  # 2
        "[1.0, 'o', 'x']",  # 3 invalid JSON
        '{"time": 1}',  # 4 not a list
        '"text"',  # 5 not a list
        '[1.0, "o"]',  # 6 arity
        '[1.0, "o", "x", "y"]',  # 7 arity
        '["1.0", "o", "x"]',  # 8 time is a string
        '[true, "o", "x"]',  # 9 time is a bool
        '[NaN, "o", "x"]',  # 10 not finite
        '[1e999, "o", "x"]',  # 11 infinite
        '[null, "o", "x"]',  # 12 no time
        '[1.0, 5, "x"]',  # 13 code not a string
        '[1.0, "", "x"]',  # 14 empty code
        '[1.0, "o", null]',  # 15 data not a string
        '[1.0, "o", ["x"]]',  # 16 data not a string
        "[" * 100_000,  # 17 nested too deeply for the JSON parser
        '[2.0, "o", "end"]',  # 18
    ]
    events, reader = read_all(cast(V2, *lines))
    assert [e.data for e in events] == ["ok", "end"]
    expected = ["invalid_json", "not_a_list", "not_a_list", "bad_arity", "bad_arity"]
    expected += ["bad_time"] * 5 + ["bad_code"] * 2 + ["bad_data"] * 2 + ["invalid_json"]
    assert reasons(reader) == [(n, "skipped", r) for n, r in enumerate(expected, 3)]
    assert all(p.detail for p in reader.problems)


def test_unknown_event_codes_are_kept() -> None:
    events, reader = read_all(cast(V2, '[1, "size", "80x24"]', '[2, "z", ""]'))
    assert [e.code for e in events] == ["size", "z"] and reader.problems == []


def test_v2_time_going_backwards_is_clamped_kept_and_reported() -> None:
    events, reader = read_all(
        cast(V2, '[-1, "o", "a"]', '[2.5, "o", "b"]', '[1.0, "o", "c"]', '[3, "o", "d"]')
    )
    assert events == [Event(0.0, "o", "a"), Event(2.5, "o", "b"), Event(2.5, "o", "c"), Event(3.0, "o", "d")]
    assert reasons(reader) == [(2, "adjusted", "time_went_backwards"), (4, "adjusted", "time_went_backwards")]


def test_v3_negative_interval_is_clamped_to_zero_and_reported() -> None:
    events, reader = read_all(cast(V3, '[1, "o", "a"]', '[-0.5, "o", "b"]', '[0.25, "o", "c"]'))
    assert [e.time for e in events] == [1.0, 1.0, 1.25]
    assert reasons(reader) == [(3, "adjusted", "negative_interval")]


def test_v3_intervals_accumulate_without_drift() -> None:
    events, reader = read_all(cast(V3, *['[0.1, "o", "x"]'] * 100_000))
    assert events[-1].time == 10_000.0 and events[9].time == 1.0
    assert sum([0.1] * 100_000) != 10_000.0  # what float accumulation would have given


def test_invalid_utf8_is_replaced_and_reported() -> None:
    events, reader = read_all(cast(V2, b'[1, "o", "a\xffb\xe2\x82"]'))
    assert events == [Event(1.0, "o", "a\ufffdb\ufffd")]
    assert reasons(reader) == [(2, "adjusted", "invalid_utf8")]


def test_lone_surrogate_escape_is_replaced_and_reported() -> None:
    events, reader = read_all(cast(V2, '[1, "o", "a\\ud800b"]', '[2, "o", "\\ud83d\\ude00"]'))
    assert [e.data for e in events] == ["a\ufffdb", "\U0001f600"]
    assert reasons(reader) == [(2, "adjusted", "lone_surrogate")]


def test_truncated_tail_is_tolerated_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "killed.cast"
    with CastWriter(open(path, "wb"), Header(version=3, width=80, height=24), version=3) as writer:
        writer.write_header()
        writer.write_output(0.5, "one")
        writer.write_output(1.0, "two")
        last = writer.write_output(1.5, "three — half written")
    whole = path.read_bytes()
    cut = len(whole) - len(last) // 2
    path.write_bytes(whole[:cut])
    with open_cast(path) as reader:
        events = list(reader.events())
    assert [e.data for e in events] == ["one", "two"]
    assert reasons(reader) == [(4, "truncated", "truncated_tail")]
    assert reader.truncated_tail
    summary = cast_summary(path)
    assert (summary.events, summary.last_time, summary.duration) == (2, 1.0, 1.0)
    assert summary.counts == {"o": 2} and summary.truncated
    assert summary.size == cut and summary.complete_bytes == len(whole) - len(last)


def test_complete_last_line_without_newline_is_used() -> None:
    events, reader = read_all(cast(V2, '[1, "o", "a"]', '[2, "o", "b"]', end=b""))
    assert [e.data for e in events] == ["a", "b"] and reader.problems == [] and not reader.truncated_tail


def test_a_broken_line_in_the_middle_is_invalid_json_not_truncated() -> None:
    events, reader = read_all(cast(V2, '[1, "o", "a', '[2, "o", "b"]'))
    assert [e.data for e in events] == ["b"]
    assert reasons(reader) == [(2, "skipped", "invalid_json")] and not reader.truncated_tail


# -- header --------------------------------------------------------------------------------------


def test_unknown_header_keys_are_kept_in_extra() -> None:
    header = dict(V2, duration=3.5, recorder={"principal": "alice"}, custom=[1, 2])
    reader = open_cast(io.BytesIO(cast(header)))
    assert reader.header.extra == {"duration": 3.5, "recorder": {"principal": "alice"}, "custom": [1, 2]}
    assert reader.header.context == {"principal": "alice"}


def test_bad_optional_header_fields_are_dropped_and_reported() -> None:
    header = dict(V2, timestamp="yesterday", idle_time_limit=-1, title=5, env=[1], theme="dark", command=None)
    reader = open_cast(io.BytesIO(cast(header, '[1, "o", "a"]')))
    h = reader.header
    assert (h.timestamp, h.idle_time_limit, h.title, h.env, h.theme) == (None, None, None, {}, None)
    assert [(p.line, p.reason) for p in reader.problems] == [(1, Reason.BAD_HEADER_FIELD)] * 5
    assert len(list(reader.events())) == 1
    assert len(reader.problems) == 5  # header problems survive every events() pass


def test_float_timestamp_is_truncated_to_int() -> None:
    assert open_cast(io.BytesIO(cast(dict(V2, timestamp=1509091818.7)))).header.timestamp == 1509091818


def test_utf8_bom_before_header_is_ignored() -> None:
    events, reader = read_all(b"\xef\xbb\xbf" + cast(V2, '[1, "o", "a"]'))
    assert reader.version == 2 and len(events) == 1


def test_single_line_v1_document_is_read() -> None:
    doc = {"version": 1, "width": 10, "height": 5, "duration": 1.5, "stdout": [[0.5, "a"], [1, "b"]]}
    events, reader = read_all(json.dumps(doc).encode())
    assert events == [Event(0.5, "o", "a"), Event(1.5, "o", "b")] and reader.problems == []


def test_bad_v1_frames_are_reported_by_frame_number() -> None:
    frames = [[0.5, "a"], "x", [1], [True, "b"], [1, None], [-1, "c"], [0.5, "d"]]
    doc = {"version": 1, "width": 10, "height": 5, "stdout": frames}
    events, reader = read_all(json.dumps(doc, indent=2).encode())
    assert events == [Event(0.5, "o", "a"), Event(0.5, "o", "c"), Event(1.0, "o", "d")]
    assert reasons(reader) == [
        (2, "skipped", "not_a_list"),
        (3, "skipped", "bad_arity"),
        (4, "skipped", "bad_time"),
        (5, "skipped", "bad_data"),
        (6, "adjusted", "negative_interval"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"\x00\x01\x02binary", "not a JSON object"),
        (b"hello world\n", "not a JSON object"),
        (b'[1, "o", "x"]\n', "not a JSON object"),
        (b'{"width": 80, "height": 24}\n', 'no "version"'),
        (b'{"version": 4, "width": 80}\n', "unsupported asciicast version 4"),
        (b'{"version": "2", "width": 80}\n', "unsupported asciicast version '2'"),
        (b'{"version": 2, "height": 24}\n', '"width" must be a non-negative integer'),
        (b'{"version": 2, "width": -1, "height": 24}\n', '"width" must be a non-negative integer'),
        (b'{"version": 2, "width": true, "height": 24}\n', '"width" must be a non-negative integer'),
        (b'{"version": 3, "width": 80, "height": 24}\n', 'no "term" object'),
        (b'{"version": 3, "term": {"cols": 80}}\n', '"term.rows" must be'),
        (b'{\n  "version": 2,\n  "width": 80,\n  "height": 24\n}\n', "single JSON line"),
        (b'{"version": 1, "width": 80, "height": 24}\n', 'no "stdout" list'),
        (b'{"version": 2, "width": 80,\n[1, "o", "x"]\n', "first line is not valid JSON"),
    ],
)
def test_not_asciicast_raises_format_error_with_one_line_message(data: bytes, message: str) -> None:
    with pytest.raises(CastFormatError) as info:
        open_cast(io.BytesIO(data))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# -- limits -------------------------------------------------------------------------------------


def test_line_over_max_line_bytes_is_reported_and_reading_goes_on() -> None:
    long_line = '[1, "o", "' + "x" * 200 + '"]'
    exact = '[2, "o", "' + "y" * (100 - 12) + '"]'
    assert len(exact) == 100
    events, reader = read_all(cast(V2, long_line, exact, '[3, "o", "z"]'), max_line_bytes=100)
    assert [e.time for e in events] == [2.0, 3.0]
    assert reasons(reader) == [(2, "skipped", "line_too_long")]


def test_default_line_limit_is_sixteen_mib() -> None:
    assert MAX_LINE_BYTES == 16 * 1024 * 1024
    too_long = b'[1, "o", "' + b"x" * MAX_LINE_BYTES + b'"]'
    events, reader = read_all(cast(V2, too_long, '[2, "o", "after"]', too_long, end=b""))
    assert events == [Event(2.0, "o", "after")]
    assert reasons(reader) == [(2, "skipped", "line_too_long"), (4, "skipped", "line_too_long")]


def test_header_over_max_header_bytes_raises_cast_too_large() -> None:
    data = cast(dict(V2, title="t" * 500), '[1, "o", "a"]')
    assert open_cast(io.BytesIO(data), max_header_bytes=600).header.title == "t" * 500
    with pytest.raises(CastTooLarge, match="header line") as info:
        open_cast(io.BytesIO(data), max_header_bytes=100)
    assert info.value.limit == 100


def test_v1_document_over_max_v1_bytes_raises_cast_too_large() -> None:
    doc = {"version": 1, "width": 10, "height": 5, "stdout": [[0.5, "x" * 1000]]}
    data = json.dumps(doc, indent=1).encode()
    assert len(list(open_cast(io.BytesIO(data), max_v1_bytes=2000).events())) == 1
    with pytest.raises(CastTooLarge, match="v1 document"):
        open_cast(io.BytesIO(data), max_v1_bytes=500)


def test_problems_beyond_max_problems_are_counted_not_kept() -> None:
    events, reader = read_all(cast(V2, *(["nope"] * 50), '[1, "o", "a"]'), max_problems=10)
    assert len(events) == 1
    assert len(reader.problems) == 10 and reader.problem_count == 50


def test_time_beyond_max_time_seconds_is_bad_time() -> None:
    events, reader = read_all(cast(V3, '[1e9, "o", "a"]', '[1000000001, "o", "b"]'))
    assert [e.data for e in events] == ["a"]
    assert reasons(reader) == [(3, "skipped", "bad_time")]


# -- fuzzing -------------------------------------------------------------------------------------

_HEADERS = st.sampled_from(
    [
        json.dumps(V2).encode(),
        json.dumps(V3).encode(),
        json.dumps(dict(V3, term={"cols": 1, "rows": 1, "type": None, "theme": 5})).encode(),
        b'{"version": 1, "width": 1, "height": 1, "stdout": [',
        b"{",
        b"",
    ]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
_LINES = st.one_of(
    st.binary(max_size=40),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.tuples(st.floats() | st.integers(), st.text(max_size=3), _JSON).map(
        lambda v: json.dumps(list(v)).encode()
    ),
    st.sampled_from([b"", b"#", b"\xff\xfe", b'[1, "o", "\\ud800"]', b'[1, "o", "x"', b"[" * 50]),
)
_LIMITS = st.fixed_dictionaries(
    {
        "max_line_bytes": st.sampled_from([8, 64, MAX_LINE_BYTES]),
        "max_header_bytes": st.sampled_from([16, 1024]),
        "max_v1_bytes": st.sampled_from([32, 4096]),
        "max_problems": st.sampled_from([0, 3, 1000]),
    }
)


def _consume(data: bytes, limits: dict[str, int]) -> None:
    try:
        reader = open_cast(io.BytesIO(data), **limits)
    except CastError:
        return
    events = list(reader.events())
    assert all(type(e.time) is float and e.time >= 0 for e in events)
    assert all(isinstance(e.code, str) and e.code and isinstance(e.data, str) for e in events)
    assert all(a.time <= b.time for a, b in zip(events, events[1:], strict=False))
    assert reader.problem_count >= len(reader.problems)
    # Every event must be encodable to the UTF-8 a consumer writes: no lone surrogates get out.
    for event in events:
        event.data.encode("utf-8")


@pytest.mark.timeout(60)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300), limits=_LIMITS)
def test_fuzz_arbitrary_bytes_only_raise_cast_errors(data: bytes, limits: dict[str, int]) -> None:
    _consume(data, limits)


@pytest.mark.timeout(60)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=_HEADERS, lines=st.lists(_LINES, max_size=12), limits=_LIMITS, newline=st.booleans())
def test_fuzz_structured_lines_only_raise_cast_errors(
    header: bytes, lines: list[bytes], limits: dict[str, int], newline: bool
) -> None:
    _consume(b"\n".join([header, *lines]) + (b"\n" if newline else b""), limits)


def test_lone_surrogate_in_header_text_is_replaced_and_reported() -> None:
    reader = open_cast(io.BytesIO(b'{"version": 2, "width": 1, "height": 1, "title": "a\\udc80"}\n'))
    assert reader.header.title == "a\ufffd"
    assert reasons(reader) == [(1, "adjusted", "lone_surrogate")]


def test_unbuffered_raw_file_source_is_read(tmp_path: Path) -> None:
    path = tmp_path / "a.cast"
    path.write_bytes(SAMPLE)
    with open(path, "rb", buffering=0) as raw:
        assert len(list(open_cast(raw).events())) == 2


@pytest.mark.parametrize("limit", ["max_line_bytes", "max_header_bytes", "max_v1_bytes"])
def test_limits_below_one_are_refused(limit: str) -> None:
    with pytest.raises(CastValueError, match=limit):
        open_cast(io.BytesIO(SAMPLE), **{limit: 0})


def test_header_problem_count_survives_when_none_are_kept() -> None:
    reader = open_cast(io.BytesIO(cast(dict(V2, title=5), "junk")), max_problems=0)
    list(reader.events())
    assert reader.problems == [] and reader.problem_count == 2


# -- block parsing (a file) and line-by-line parsing (a stream) agree ---------------------------------

_GOOD = [b'[%d.5, "o", "out %d\\r\\n"]\n', b'[%d.25, "i", "key %d"]\n']
_ODD = [
    b'[1.0, "o", "a"], [2.0, "o", "b"]\n',  # two events on one line
    b'[3.0, "o",\n',  # an event split over two lines...
    b'"c"]\n',  # ...whose second half is no event either
    b"\n",
    b"   \n",
    b"# a comment\n",
    b'[1.0, "o"]\n',
    b'[true, "o", "x"]\n',
    b'[1.0, "", "x"]\n',
    b'[1.0, "o", 5]\n',
    b'{"not": "a list"}\n',
    b'[1.0, "o", "\\ud800 lone"]\n',
    b'[1.0, "o", "bad \xff utf8"]\n',
    b'[0.0, "o", "time went back"]\n',
    b'[-2.0, "o", "negative interval"]\n',
    b'[1e99, "o", "far future"]\n',
    b' [1.0, "o", "leading space"]\n',
    b'[1.0, "o", "crlf"]\r\n',
    b'[[1.0], "o", "x"]\n',
    b'[1.0, "o", "x"]]\n',
]


def _both_ways(header: dict[str, Any], body: bytes, tmp_path: Path) -> tuple[Any, Any]:
    data = json.dumps(header).encode() + b"\n" + body
    path = tmp_path / "x.cast"
    path.write_bytes(data)
    with open_cast(path) as from_file:
        file_events = list(from_file.events())
        file_side = (file_events, from_file.problems, from_file.problem_count, from_file.comments)
        file_bytes = (from_file.bytes_read, from_file.complete_bytes, from_file.truncated_tail)
    stream = open_cast(io.BufferedReader(_OneWay(data)))
    stream_events = list(stream.events())
    stream_side = (stream_events, stream.problems, stream.problem_count, stream.comments)
    stream_bytes = (stream.bytes_read, stream.complete_bytes, stream.truncated_tail)
    return (file_side, file_bytes), (stream_side, stream_bytes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    version=st.sampled_from([2, 3]),
    picks=st.lists(st.tuples(st.booleans(), st.integers(0, 10_000)), max_size=700),
    tail=st.sampled_from([b"", b'[9.0, "o", "no newline"]', b'[9.0, "o", "trunc']),
)
def test_block_parsing_of_a_file_reads_exactly_what_line_parsing_of_a_stream_reads(
    tmp_path: Path, version: int, picks: list[tuple[bool, int]], tail: bytes
) -> None:
    # Files are parsed a block of lines at a time, streams a line at a time: whatever the lines,
    # both give the same events, problems (with line numbers), comment count and byte counts.
    lines = []
    for i, (odd, n) in enumerate(picks):
        if odd:
            lines.append(_ODD[n % len(_ODD)])
        else:
            lines.append(_GOOD[n % 2] % (i, n))
    header = V2 if version == 2 else V3
    from_file, from_stream = _both_ways(header, b"".join(lines) + tail, tmp_path)
    assert from_file == from_stream


def test_a_large_clean_file_is_read_in_blocks_with_every_event_in_order(tmp_path: Path) -> None:
    body = b"".join(b'[%d.5, "o", "line %d\\r\\n"]\n' % (i, i) for i in range(5000))
    (events, problems, count, _), (size, complete, truncated) = _both_ways(V2, body, tmp_path)[0]
    assert [e.data for e in events] == [f"line {i}\r\n" for i in range(5000)]
    assert problems == [] and count == 0 and not truncated
    assert size == complete == len(json.dumps(V2)) + 1 + len(body)
