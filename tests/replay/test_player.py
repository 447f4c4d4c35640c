"""The player loop with a fake clock and scripted keys (the terminal is the only fake), raw mode on a
real PTY, and following a file that grows while the player waits."""

from __future__ import annotations

import os
import signal
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from recorder.cast.model import MARKER, OUTPUT, RESIZE, Event, Header
from recorder.cast.writer import CastWriter
from recorder.errors import CastFormatError, CastValueError, InvalidOffset
from recorder.replay.player import (
    KEY_INTERRUPT,
    LEAVE_ALTERNATE,
    MAX_SPEED,
    MIN_SPEED,
    RESET_MODES,
    AlternateTracker,
    CastTail,
    Player,
    SleepKeys,
    TerminalKeys,
    follow_events,
    live_events,
    parse_offset,
    restore_sequence,
)
from recorder.replay.render import screen_at

pytestmark = pytest.mark.timeout(30)


# -- edges: a clock and a keyboard ----------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedKeys:
    """Keys pressed at given clock times; waiting moves the fake clock forward."""

    def __init__(self, clock: FakeClock, script: list[tuple[float, str]]) -> None:
        self.clock = clock
        self.script = sorted(script)
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None) -> str | None:
        self.waits.append(timeout)
        if self.script and (timeout is None or self.script[0][0] <= self.clock.now + timeout):
            at, key = self.script.pop(0)
            self.clock.now = max(self.clock.now, at)
            return key
        if timeout is None:
            raise AssertionError("player waits forever for a key that never comes")
        self.clock.now += timeout
        return None


class Recorder:
    """The write edge: what was written and at what clock time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.writes: list[tuple[float, str]] = []

    def __call__(self, text: str) -> None:
        self.writes.append((round(self.clock.now, 6), text))

    @property
    def texts(self) -> list[str]:
        return [t for _, t in self.writes]


def out(*pairs: tuple[float, str]) -> list[Event]:
    return [Event(t, OUTPUT, d) for t, d in pairs]


def make(
    script: list[tuple[float, str]] | None = None, **kw: object
) -> tuple[Player, FakeClock, Recorder, ScriptedKeys]:
    clock = FakeClock()
    keys = ScriptedKeys(clock, script or [])
    rec = Recorder(clock)
    return Player(rec, clock=clock, keys=keys, **kw), clock, rec, keys  # type: ignore[arg-type]


# -- parse_offset ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("90", 90.0),
        ("2.5", 2.5),
        (".5", 0.5),
        ("1:30", 90.0),
        ("01:30.25", 90.25),
        ("1:02:03", 3723.0),
        ("10:00:00.5", 36000.5),
        (" 75 ", 75.0),
        ("90:00", 5400.0),
    ],
)
def test_offsets_parse_as_seconds_mm_ss_and_h_mm_ss(text: str, seconds: float) -> None:
    assert parse_offset(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "-1", "1:60", "1:60:00", "abc", "1::2", "1:2:3:4", "1e3", "nan", "inf", ":30"]
)
def test_bad_offsets_are_a_named_error(text: str) -> None:
    with pytest.raises(InvalidOffset):
        parse_offset(text)


def test_offset_beyond_the_time_limit_is_refused() -> None:
    assert parse_offset("277777:46:40") == 1_000_000_000.0
    with pytest.raises(InvalidOffset, match="limit"):
        parse_offset("277777:46:41")


# -- pacing ------------------------------------------------------------------------------------------


def test_events_are_written_when_playback_time_reaches_them_at_the_given_speed() -> None:
    player, _, rec, _ = make(speed=2.0)
    result = player.play(out((1.0, "a"), (2.0, "b"), (4.0, "c")))
    assert rec.writes == [(0.5, "a"), (1.0, "b"), (2.0, "c")]
    assert result.reason == "end" and result.events == 3


def test_idle_limit_shortens_long_pauses_only() -> None:
    player, _, rec, _ = make(idle_limit=2.0)
    player.play(out((1.0, "a"), (11.0, "b"), (12.5, "c")))
    assert rec.writes == [(1.0, "a"), (3.0, "b"), (4.5, "c")]


def test_time_going_backwards_is_a_zero_delay() -> None:
    player, _, rec, _ = make()
    player.play(out((2.0, "a"), (1.0, "b"), (3.0, "c")))
    assert rec.writes == [(2.0, "a"), (2.0, "b"), (3.0, "c")]


def test_unpaced_playback_writes_everything_at_once_without_reading_keys() -> None:
    player, clock, rec, keys = make(paced=False)
    player.play(out((1.0, "a"), (100.0, "b")))
    assert rec.writes == [(0.0, "a"), (0.0, "b")]
    assert keys.waits == [] and clock.now == 0.0


def test_a_slow_terminal_does_not_stretch_the_recording() -> None:
    clock = FakeClock()
    keys = ScriptedKeys(clock, [])
    written: list[float] = []

    def slow_write(text: str) -> None:
        written.append(clock.now)
        clock.now += 0.7  # each write takes 0.7 s

    Player(slow_write, clock=clock, keys=keys).play(out((1.0, "a"), (2.0, "b"), (3.0, "c")))
    assert written == [1.0, 2.0, 3.0]


def test_resizes_are_counted_not_applied_and_playback_goes_on() -> None:
    player, _, rec, _ = make()
    events = [*out((0.1, "a")), Event(0.2, RESIZE, "100x30"), Event(0.3, RESIZE, "bad"), *out((0.4, "b"))]
    result = player.play(events)
    assert rec.texts == ["a", "b"]
    assert result.resizes == 1 and result.last_size == (100, 30)


@pytest.mark.parametrize("speed", [0, -1, float("nan"), float("inf"), MIN_SPEED / 2, MAX_SPEED * 2])
def test_speed_outside_the_limits_is_refused(speed: float) -> None:
    with pytest.raises(CastValueError):
        make(speed=speed)


def test_idle_limit_must_be_positive() -> None:
    with pytest.raises(CastValueError):
        make(idle_limit=0.0)


# -- keys --------------------------------------------------------------------------------------------


def test_space_pauses_dot_steps_one_event_and_space_resumes() -> None:
    events = out((1.0, "a"), (2.0, "b"), (3.0, "c"), (4.0, "d"))
    player, _, rec, _ = make([(1.5, " "), (10.0, "."), (20.0, " ")])
    player.play(events)
    # Paused at 1.5 (playback time 1.5); "." writes b at once; resuming at 20 continues from b's time.
    assert rec.writes == [(1.0, "a"), (10.0, "b"), (21.0, "c"), (22.0, "d")]


def test_dot_while_playing_does_nothing() -> None:
    player, _, rec, _ = make([(0.5, ".")])
    player.play(out((1.0, "a"), (2.0, "b")))
    assert rec.writes == [(1.0, "a"), (2.0, "b")]


def test_bracket_jumps_to_the_next_marker_and_pauses_there() -> None:
    events = [*out((1.0, "a"), (2.0, "b")), Event(3.0, MARKER, "m1"), *out((4.0, "c"), (5.0, "d"))]
    player, _, rec, _ = make([(0.5, "]"), (10.0, " ")])
    result = player.play(events)
    assert rec.writes == [(0.5, "a"), (0.5, "b"), (11.0, "c"), (12.0, "d")]
    assert result.markers == 1


def test_bracket_without_a_later_marker_plays_the_rest_at_once() -> None:
    player, _, rec, _ = make([(0.5, "]")])
    result = player.play(out((1.0, "a"), (50.0, "b")))
    assert rec.writes == [(0.5, "a"), (0.5, "b")] and result.reason == "end"


def test_pause_on_markers_stops_after_each_marker_until_space() -> None:
    events = [*out((1.0, "a")), Event(2.0, MARKER, "x"), *out((3.0, "b"))]
    player, _, rec, _ = make([(7.0, " ")], pause_on_markers=True)
    player.play(events)
    assert rec.writes == [(1.0, "a"), (8.0, "b")]


def test_plus_and_minus_change_speed_within_limits() -> None:
    events = out((1.0, "a"), (3.0, "b"), (5.0, "c"))
    player, _, rec, _ = make([(1.0, "+"), (2.0, "-"), (2.0, "-")])
    result = player.play(events)
    # a at 1; at 1 speed 2 -> b (2 s later in playback) at 2; at 2 speed 1 then 0.5: c 2 s away -> at 6.
    assert rec.writes == [(1.0, "a"), (2.0, "b"), (6.0, "c")]
    assert result.speeds == [1.0, 2.0, 1.0, 0.5]


def test_speed_keys_stop_at_the_limits() -> None:
    player, _, _, _ = make([(0.0, "+" * 20), (0.1, "-" * 40)])
    result = player.play(out((1000.0, "a")))
    assert max(result.speeds) == MAX_SPEED and min(result.speeds) == MIN_SPEED


def test_q_quits_and_leaves_the_rest_unwritten() -> None:
    player, _, rec, _ = make([(1.5, "q")])
    result = player.play(out((1.0, "a"), (2.0, "b"), (3.0, "c")))
    assert rec.texts == ["a"] and result.reason == "quit" and result.position == 1.0


def test_q_while_paused_quits() -> None:
    player, _, rec, _ = make([(1.5, " "), (5.0, "q")])
    result = player.play(out((1.0, "a"), (2.0, "b")))
    assert rec.texts == ["a"] and result.reason == "quit"


def test_ctrl_c_key_is_an_interrupt() -> None:
    player, _, rec, _ = make([(1.5, KEY_INTERRUPT)])
    result = player.play(out((1.0, "a"), (2.0, "b")))
    assert rec.texts == ["a"] and result.reason == "interrupt"


def test_q_is_seen_while_catching_up() -> None:
    # Each write takes a second, so every later event is already due; keys are still read.
    clock = FakeClock()
    keys = ScriptedKeys(clock, [(1.05, "q")])
    written: list[str] = []

    def slow_write(text: str) -> None:
        written.append(text)
        clock.now += 1.0

    result = Player(slow_write, clock=clock, keys=keys).play(out((0.1, "a"), (0.2, "b"), (0.3, "c")))
    assert written == ["a"] and result.reason == "quit"


def test_unknown_keys_are_ignored() -> None:
    player, _, rec, _ = make([(0.5, "x\x1b[A")])
    result = player.play(out((1.0, "a"), (2.0, "b")))
    assert rec.writes == [(1.0, "a"), (2.0, "b")] and result.reason == "end"


def test_without_a_keyboard_a_pause_does_not_last() -> None:
    clock = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    rec = Recorder(clock)
    events = [*out((1.0, "a")), Event(2.0, MARKER, "m"), *out((3.0, "b"))]
    result = Player(rec, clock=clock, keys=SleepKeys(sleep), pause_on_markers=True).play(events)
    assert rec.writes == [(1.0, "a"), (3.0, "b")] and result.reason == "end"


def test_sleep_keys_sleep_and_never_return_keys() -> None:
    slept: list[float] = []
    keys = SleepKeys(slept.append)
    assert keys.wait(0.25) is None and keys.wait(0) is None and keys.wait(None) is None
    assert slept == [0.25]


# -- live follow ---------------------------------------------------------------------------------------


def test_nothing_new_waits_for_keys_and_live_output_is_written_on_arrival() -> None:
    def source() -> Iterator[Event | None]:
        yield Event(0.0, OUTPUT, "prelude")
        yield None  # nothing new for a poll interval
        yield None
        # Recorded 30 s later, but it only just arrived: written at once, not 30 s from now.
        yield Event(30.0, OUTPUT, "live1")
        yield Event(30.5, OUTPUT, "live2")

    player, _, rec, keys = make(poll_interval=0.2)
    player.play(source())
    assert rec.writes == [(0.0, "prelude"), (0.4, "live1"), (0.9, "live2")]
    assert keys.waits.count(0.2) == 2


def test_q_while_waiting_for_live_output_quits() -> None:
    def source() -> Iterator[Event | None]:
        yield Event(0.0, OUTPUT, "a")
        while True:
            yield None

    player, _, rec, _ = make([(1.0, "q")], poll_interval=0.2)
    assert player.play(source()).reason == "quit" and rec.texts == ["a"]


def _writer(path: Path, version: int) -> tuple[CastWriter, object]:
    f = open(path, "wb")  # noqa: SIM115 - closed by the test
    w = CastWriter(f, Header(version=version, width=40, height=5), version)
    return w, f


@pytest.mark.parametrize("version", [2, 3])
def test_tail_returns_complete_lines_only_and_keeps_absolute_times(tmp_path: Path, version: int) -> None:
    path = tmp_path / "live.cast"
    path.write_bytes(b"")
    with CastTail(path) as tail:
        assert tail.poll() == [] and tail.header is None
        w, f = _writer(path, version)
        w.write_header()
        w.write_output(0.5, "one\r\n")
        w.flush()
        assert [e.data for e in tail.poll()] == ["one\r\n"]
        assert tail.header is not None and (tail.header.width, tail.header.height) == (40, 5)
        line = w.write_output(1.25, "two\r\n")  # written whole, then cut to simulate a partial flush
        w.flush()
        f.truncate(f.tell() - len(line) // 2)  # type: ignore[attr-defined]
        f.seek(0, os.SEEK_END)  # type: ignore[attr-defined]
        assert tail.poll() == []
        f.write(line[len(line) - len(line) // 2 :])  # type: ignore[attr-defined]
        w.write_output(2.0, "three\r\n")
        w.flush()
        got = tail.poll()
        assert [(e.time, e.data) for e in got] == [(1.25, "two\r\n"), (2.0, "three\r\n")]
        f.close()  # type: ignore[attr-defined]


def test_tail_drops_lines_over_the_limit_and_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "live.cast"
    header = b'{"version": 2, "width": 10, "height": 2}\n'
    path.write_bytes(header)
    with CastTail(path, max_line_bytes=60) as tail:
        assert tail.poll() == []
        with open(path, "ab") as f:
            f.write(b'[0.1, "o", "' + b"x" * 100)  # longer than the limit, no newline yet
            f.flush()
            assert tail.poll() == []
            f.write(b'"]\n[0.2, "o", "ok"]\n')
        assert [e.data for e in tail.poll()] == ["ok"]
        assert tail.lines_too_long == 1


def test_tail_refuses_v1_and_bad_limits(tmp_path: Path) -> None:
    path = tmp_path / "v1.json"
    path.write_bytes(b'{"version": 1, "width": 10, "height": 2, "stdout": []}\n')
    with CastTail(path) as tail, pytest.raises(CastFormatError, match="v2 or v3"):
        tail.poll()
    with pytest.raises(CastValueError):
        CastTail(path, max_line_bytes=0)
    with pytest.raises(CastFormatError, match="cannot open"):
        CastTail(tmp_path / "missing.cast")


def test_following_a_file_that_grows_while_the_player_waits(tmp_path: Path) -> None:
    path = tmp_path / "live.cast"
    f = open(path, "wb")  # noqa: SIM115
    w = CastWriter(f, Header(version=3, width=20, height=3), 3)
    w.write_header()
    w.write_output(0.1, "\x1b[31mbefore\x1b[0m\r\n")
    w.flush()
    chunks = [[(5.0, "live-1\r\n")], [], [(6.0, "live-2\r\n"), (6.5, "live-3\r\n")]]
    finished = False

    class GrowingKeys(ScriptedKeys):
        """Waiting is when the recorder appends: one chunk per wait (the file is real)."""

        def wait(self, timeout: float | None) -> str | None:
            nonlocal finished
            if chunks:
                for t, data in chunks.pop(0):
                    w.write_output(t, data)
                w.flush()
                if not chunks:
                    finished = True
            return super().wait(timeout)

    clock = FakeClock()
    keys = GrowingKeys(clock, [])
    rec = Recorder(clock)
    with CastTail(path) as tail:
        header, events = live_events(tail, lambda: not finished, clock=clock, sleep=lambda s: None)
        result = Player(rec, clock=clock, keys=keys, poll_interval=0.1).play(events)
    f.close()
    assert result.reason == "end"
    first, *rest = rec.texts
    # The player starts at the live edge: the screen so far, condensed, then new lines as they come.
    assert screen_at(header, [Event(0, OUTPUT, first)], 0).lines()[0] == "before"
    assert rest == ["live-1\r\n", "live-2\r\n", "live-3\r\n"]


def test_follow_events_read_what_is_left_when_the_recording_ends(tmp_path: Path) -> None:
    path = tmp_path / "live.cast"
    path.write_bytes(b'{"version": 2, "width": 10, "height": 2}\n[0.1, "o", "a"]\n')
    with CastTail(path) as tail:
        tail.poll()
        calls = 0

        def active() -> bool:
            nonlocal calls
            calls += 1
            with open(path, "ab") as f:
                f.write(b'[0.2, "o", "b"]\n')  # the last lines land just before the end
            return False

        got = list(follow_events(tail, active))
    assert [e.data for e in got if e is not None] == ["b"] and calls == 1


def test_live_events_without_a_header_give_up_once_the_recording_is_over(tmp_path: Path) -> None:
    path = tmp_path / "empty.cast"
    path.write_bytes(b"")
    clock = FakeClock()
    with CastTail(path) as tail, pytest.raises(CastFormatError, match="no asciicast header"):
        live_events(tail, lambda: False, clock=clock, sleep=lambda s: None)


def test_live_events_wait_for_the_header_up_to_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "empty.cast"
    path.write_bytes(b"")
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    with CastTail(path) as tail, pytest.raises(CastFormatError):
        live_events(tail, lambda: True, header_timeout=1.0, clock=clock, sleep=sleep)
    assert 1.0 <= clock.now < 1.5


# -- the real terminal -----------------------------------------------------------------------------------


def test_terminal_keys_use_raw_mode_and_restore_the_terminal(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        keys = TerminalKeys(slave)
        with keys.raw():
            during = termios.tcgetattr(slave)
            assert not during[3] & (termios.ECHO | termios.ICANON | termios.ISIG)
            assert keys.wait(0) is None
            os.write(master, b" q")
            assert keys.wait(5.0) == " q"
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_termination_signal_becomes_an_interrupt_and_handlers_come_back() -> None:
    master, slave = os.openpty()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        before = termios.tcgetattr(slave)
        keys = TerminalKeys(slave)
        with keys.raw():
            os.kill(os.getpid(), signal.SIGTERM)
            assert keys.wait(None) == KEY_INTERRUPT
            assert keys.signal == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is previous
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_raw_mode_is_restored_when_playback_raises() -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        with pytest.raises(RuntimeError), TerminalKeys(slave).raw():
            raise RuntimeError("boom")
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_alternate_screen_is_left_only_when_playback_entered_it() -> None:
    tracker = AlternateTracker()
    tracker.feed("plain\x1b[?10")
    tracker.feed("49h full screen")  # the switch split across two chunks
    assert tracker.on
    assert restore_sequence(tracker.on) == LEAVE_ALTERNATE + RESET_MODES
    tracker.feed("\x1b[?1049l")
    assert not tracker.on and restore_sequence(tracker.on) == RESET_MODES
