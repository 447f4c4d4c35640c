"""``recorder play``, ``render``, ``transcript`` and ``export`` through the command line: on files, on
connection ids in a real index, on a session recorded through the real proxy, and in a real PTY."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import termios
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import avt
import pexpect
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner
from websockets.asyncio.client import ClientConnection, connect

from recorder.cast.model import MARKER, OUTPUT, Event, Header
from recorder.cast.reader import open_cast
from recorder.cast.writer import CastWriter
from recorder.cli import export_cmd, play_cmd, render_cmd, transcript_cmd
from recorder.index.db import make_engine, upgrade
from recorder.index.models import ConnectionStatus, EndReason
from recorder.index.store import Index
from recorder.protocol import SESSION_HEADER, Channel, Resize, RuntimeArn, ShellRequest, decode, encode
from recorder.replay.export import ExportFormat, verify_bundle
from recorder.replay.render import screen_at
from tests.index.conftest import PG_ENV, pg_url  # noqa: F401 - the fixture, for the PostgreSQL test
from tests.procs import TEST_ARN, recorder_command, wait_until
from tests.proxy.conftest import stack

pytestmark = pytest.mark.timeout(60)

runner = CliRunner()
#: Safety nets (never asserted as durations).
EXPECT_TIMEOUT = 20
PROMPT_END = "\x1b]133;B\x07"


@pytest.fixture
def app() -> typer.Typer:
    """A bare app with only these commands, so other command modules cannot break these tests."""
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """Test root."""

    for module in (play_cmd, render_cmd, transcript_cmd, export_cmd):
        module.register(root)
    return root


def write_cast(path: Path, header: Header, events: list[Event], version: int = 2) -> Path:
    with open(path, "wb") as f:
        w = CastWriter(f, header, version)
        w.write_header()
        for ev in events:
            w.write_event(ev.time, ev.code, ev.data)
    return path


def read(path: Path) -> tuple[Header, list[Event]]:
    with open_cast(path) as reader:
        return reader.header, list(reader.events())


COLOURED = [
    Event(0.2, OUTPUT, "$ ls\r\n"),
    Event(0.5, OUTPUT, "\x1b[31mred\x1b[0m plain\r\n"),
    Event(1.0, MARKER, "half"),
    Event(1.5, OUTPUT, "\x1b[2J\x1b[Hcleared\r\n"),
    Event(2.0, OUTPUT, "later\r\n"),
]


@pytest.fixture
def cast_file(tmp_path: Path) -> Path:
    return write_cast(tmp_path / "demo.cast", Header(version=2, width=40, height=6, title="demo"), COLOURED)


def one_line_error(result: object) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code != 0  # type: ignore[attr-defined]
    assert "Traceback" not in stderr + result.output  # type: ignore[attr-defined]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# -- help and errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["play", "render", "transcript", "export"])
def test_every_command_has_help(app: typer.Typer, command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "--data-dir" in result.output and "--db" in result.output


def test_bad_input_is_one_line_and_a_non_zero_exit(app: typer.Typer, tmp_path: Path, cast_file: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    data = ["--data-dir", str(tmp_path / "data")]
    cases = [
        (["play", str(tmp_path / "missing.cast")], "no recording file"),
        (["render", str(tmp_path / "notes.txt")], "not an asciicast"),
        (["transcript", "42", *data], "no index"),
        (["render", str(cast_file), "--at", "1:75"], "below 60"),
        (["play", str(cast_file), "--at", "soon"], "not seconds"),
        (
            ["export", str(cast_file), "--format", "html", "-o", str(tmp_path / "no" / "x.html")],
            "cannot write",
        ),
        (
            [
                "export",
                str(cast_file),
                "--format",
                "txt",
                "--from",
                "5",
                "--to",
                "1",
                "-o",
                str(tmp_path / "x"),
            ],
            "clip end",
        ),
        (["play", "shell:abc"], "shell:<number>"),
        (["play", str(cast_file), "--shell"], "--shell needs a connection id"),
        (["play", str(cast_file), "--pause-on-markers"], "needs a terminal"),
        (["play", str(cast_file), "--follow", "--until", "3"], "--follow"),
        (["play", str(cast_file), "--speed", "1000"], "speed must be between"),
    ]
    for args, message in cases:
        line = one_line_error(runner.invoke(app, args))
        assert message in line, (args, line)


# -- files -------------------------------------------------------------------------------------------


def test_play_to_a_pipe_writes_the_output_at_once(app: typer.Typer, cast_file: Path) -> None:
    result = runner.invoke(app, ["play", str(cast_file)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes.decode() == "".join(e.data for e in COLOURED if e.code == OUTPUT)


def test_play_with_speed_paces_a_pipe_and_at_until_clip(app: typer.Typer, cast_file: Path) -> None:
    result = runner.invoke(app, ["play", str(cast_file), "--speed", "20", "--at", "1.2", "--until", "1.8"])
    assert result.exit_code == 0, result.stderr
    header, _ = read(cast_file)
    vt = avt.Vt(header.width, header.height, scrollback_limit=0)
    vt.feed_str(result.stdout_bytes.decode())
    # Starts from the screen at 1.2 (red line intact), plays to 1.8 ("cleared", not "later").
    assert [line.text.rstrip() for line in vt.view()][:2] == ["cleared", ""]
    assert "later" not in result.stdout_bytes.decode()
    start = runner.invoke(app, ["play", str(cast_file), "--at", "1.2", "--until", "1.2"])
    vt = avt.Vt(header.width, header.height, scrollback_limit=0)
    vt.feed_str(start.stdout_bytes.decode())
    assert [line.text.rstrip() for line in vt.view()][:2] == ["$ ls", "red plain"]


def test_render_draws_the_screen_at_a_moment(app: typer.Typer, cast_file: Path, tmp_path: Path) -> None:
    txt = runner.invoke(app, ["render", str(cast_file), "--at", "0:01"])
    assert txt.exit_code == 0 and txt.stdout.splitlines()[:2] == ["$ ls", "red plain"]
    end = runner.invoke(app, ["render", str(cast_file)])
    assert end.stdout.splitlines()[:2] == ["cleared", "later"]
    svg = runner.invoke(app, ["render", str(cast_file), "--at", "1", "--format", "svg"])
    assert svg.exit_code == 0 and svg.stdout.startswith("<svg") and 'fill="#cd0000"' in svg.stdout
    png_path = tmp_path / "shot.png"
    png = runner.invoke(app, ["render", str(cast_file), "--at", "1", "--format", "png", "-o", str(png_path)])
    assert png.exit_code == 0 and png.stdout == ""
    colours = [c for _, c in Image.open(png_path).convert("RGB").getcolors(1 << 20) or []]
    assert any(r > 150 and g < 50 and b < 50 for r, g, b in colours)  # the red kept
    piped = runner.invoke(app, ["render", str(cast_file), "--format", "png"])
    assert piped.stdout_bytes.startswith(b"\x89PNG\r\n")


def test_transcript_prints_commands_and_output(app: typer.Typer, tmp_path: Path) -> None:
    events = [
        Event(0.0, OUTPUT, "\x1b]133;A\x07$ \x1b]133;B\x07"),
        Event(1.0, "i", "echo hi\r"),
        Event(1.1, OUTPUT, "echo hi\r\n\x1b]133;C\x07hi\r\n\x1b]133;D;0\x07\x1b]133;A\x07$ \x1b]133;B\x07"),
        Event(65.0, "i", "false\r"),
        Event(65.1, OUTPUT, "false\r\n\x1b]133;C\x07\x1b]133;D;1\x07\x1b]133;A\x07$ \x1b]133;B\x07"),
    ]
    path = write_cast(tmp_path / "t.cast", Header(version=2, width=40, height=6), events)
    result = runner.invoke(app, ["transcript", str(path)])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["[00:01] $ echo hi", "        hi", "[01:05] $ false  [exit 1]"]
    out = tmp_path / "t.txt"
    assert runner.invoke(app, ["transcript", str(path), "-o", str(out)]).exit_code == 0
    assert out.read_text() == result.stdout


def test_export_every_format_and_a_clip_that_starts_on_the_right_screen(
    app: typer.Typer, cast_file: Path, tmp_path: Path
) -> None:
    header, events = read(cast_file)
    for fmt in ExportFormat:
        out = tmp_path / f"out.{fmt.value}"
        result = runner.invoke(app, ["export", str(cast_file), "--format", fmt.value, "-o", str(out)])
        assert result.exit_code == 0, result.stderr
        assert f"{out}: {fmt.value}" in result.stdout and out.stat().st_size > 0
    clip = tmp_path / "clip.cast"
    result = runner.invoke(
        app,
        ["export", str(cast_file), "--format", "cast-v3", "--from", "1.2", "--to", "0:01.8", "-o", str(clip)],
    )
    assert result.exit_code == 0, result.stderr
    h, clipped = read(clip)
    assert h.version == 3
    assert screen_at(h, clipped, 0).lines() == screen_at(header, events, 1.2).lines()
    rendered = runner.invoke(app, ["render", str(clip), "--at", "0"])
    assert rendered.stdout.splitlines()[:2] == ["$ ls", "red plain"]
    assert max(e.time for e in clipped) <= 0.6 + 1e-6
    bundle = tmp_path / "out.bundle"
    meta = json.loads(zipfile.ZipFile(bundle).read("metadata.json"))
    assert meta["source"] == str(cast_file) and meta["title"] == "demo"


def test_every_corpus_file_renders_and_exports_in_every_format(app: typer.Typer, tmp_path: Path) -> None:
    from tests.replay.conftest import CORPUS

    if not (CORPUS / "README.md").is_file():
        pytest.skip(f"asciicast corpus not found at {CORPUS} (set RECORDER_CORPUS_DIR or add ../shared)")
    files = sorted(p for p in CORPUS.iterdir() if p.suffix in (".cast", ".json"))
    assert files
    for path in files:
        for fmt in ("txt", "svg", "png"):
            out = tmp_path / f"{path.stem}.{fmt}"
            result = runner.invoke(app, ["render", str(path), "--at", "1", "--format", fmt, "-o", str(out)])
            assert result.exit_code == 0 and out.stat().st_size > 0, (path.name, fmt, result.stderr)
        for fmt in ExportFormat:
            out = tmp_path / f"{path.stem}.{fmt.value}"
            result = runner.invoke(
                app, ["export", str(path), "--format", fmt.value, "--from", "0.5", "-o", str(out)]
            )
            assert result.exit_code == 0, (path.name, fmt, result.stderr)
        assert runner.invoke(app, ["transcript", str(path)]).exit_code == 0
        assert runner.invoke(app, ["play", str(path)]).exit_code == 0


# -- the index ---------------------------------------------------------------------------------------


def add_connection(
    index: Index,
    data: Path,
    name: str,
    events: list[Event],
    *,
    shell_id: str,
    start: datetime,
    size: tuple[int, int],
) -> int:
    rel = f"recordings/{name}.cast"
    (data / "recordings").mkdir(parents=True, exist_ok=True)
    write_cast(data / rel, Header(version=2, width=size[0], height=size[1]), events)
    conn = index.open_connection(
        runtime_arn=TEST_ARN,
        qualifier=None,
        session_id="s" * 33,
        shell_id=shell_id,
        principal="alice",
        client_address="127.0.0.1",
        upstream="ws://upstream",
        started_at=start,
        recording_path=rel,
        cast_version=2,
        cols=size[0],
        rows=size[1],
    )
    index.finish_connection(
        conn,
        ended_at=start + timedelta(seconds=events[-1].time),
        status=ConnectionStatus.ENDED,
        end_reason=EndReason.CLIENT_CLOSED,
        close_code=1000,
        exit_code=None,
        counters={},
        invalid_utf8=0,
        recording_size=(data / rel).stat().st_size,
        sha256=None,
        reconnected=False,
        bytes_dropped=0,
    )
    return conn


@contextlib.contextmanager
def index_with_shell(data: Path, url: str) -> Iterator[tuple[Index, int, int]]:
    upgrade(url)
    engine = make_engine(url)
    try:
        index = Index(engine)
        t0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        first = add_connection(
            index,
            data,
            "a",
            [Event(0.1, OUTPUT, "first-conn\r\n"), Event(2.0, OUTPUT, "bye\r\n")],
            shell_id="sh1",
            start=t0,
            size=(40, 6),
        )
        second = add_connection(
            index,
            data,
            "b",
            [Event(0.1, OUTPUT, "second-conn\r\n")],
            shell_id="sh1",
            start=t0 + timedelta(hours=1),
            size=(50, 8),
        )
        yield index, first, second
    finally:
        engine.dispose()


def test_ids_and_shells_resolve_through_the_index(app: typer.Typer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    opts = ["--data-dir", str(data), "--db", url]
    with index_with_shell(data, url) as (index, first, second):
        row = index.get_connection(first)
        assert row is not None
        one = runner.invoke(app, ["play", str(first), *opts])
        assert one.exit_code == 0 and one.stdout_bytes == b"first-conn\r\nbye\r\n"
        for target in ([f"shell:{row.shell_pk}"], [str(second), "--shell"]):
            both = runner.invoke(app, ["play", *target, *opts])
            assert both.exit_code == 0, target
            assert both.stdout_bytes == b"first-conn\r\nbye\r\nsecond-conn\r\n", target
        # On the shell's timeline the second connection starts 1 s (the capped gap) after the first.
        shot = runner.invoke(app, ["render", f"shell:{row.shell_pk}", "--at", "3.05", *opts])
        assert shot.stdout.splitlines()[:3] == ["first-conn", "bye", ""]
        shot = runner.invoke(app, ["render", f"shell:{row.shell_pk}", "--at", "3.1", *opts])
        lines = shot.stdout.splitlines()
        assert len(lines) == 8 and lines[:3] == ["first-conn", "bye", "second-conn"]
        bundle = tmp_path / "b.zip"
        done = runner.invoke(app, ["export", str(first), "--format", "bundle", "-o", str(bundle), *opts])
        assert done.exit_code == 0, done.stderr
        verify_bundle(bundle)
        meta = json.loads(zipfile.ZipFile(bundle).read("metadata.json"))
        assert meta["connection"]["id"] == first and meta["connection"]["principal"] == "alice"
        assert meta["connection"]["status"] == "ended" and meta["connection"]["shell_pk"] == row.shell_pk
        shell_bundle = tmp_path / "s.zip"
        done = runner.invoke(
            app, ["export", f"shell:{row.shell_pk}", "--format", "bundle", "-o", str(shell_bundle), *opts]
        )
        meta = json.loads(zipfile.ZipFile(shell_bundle).read("metadata.json"))
        assert [c["id"] for c in meta["connections"]] == [first, second]
        assert "no connection 999" in one_line_error(runner.invoke(app, ["play", "999", *opts]))
        assert "no shell 999" in one_line_error(runner.invoke(app, ["render", "shell:999", *opts]))
        (data / row.recording_path).unlink()
        assert "is missing" in one_line_error(
            runner.invoke(app, ["export", str(first), "--format", "txt", "-o", str(tmp_path / "t"), *opts])
        )


def test_ids_resolve_through_a_postgresql_index(app: typer.Typer, tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    data = tmp_path / "data"
    with index_with_shell(data, pg_url) as (_, first, _):
        result = runner.invoke(app, ["play", str(first), "--data-dir", str(data), "--db", pg_url])
        assert result.exit_code == 0 and result.stdout_bytes == b"first-conn\r\nbye\r\n"


# -- a real session through the proxy ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_shell(base: str) -> AsyncIterator[ClientConnection]:
    req = ShellRequest(RuntimeArn.parse(TEST_ARN), None, uuid.uuid4().hex, str(uuid.uuid4()))
    async with connect(base + req.target(), additional_headers={SESSION_HEADER: req.session_id or ""}) as ws:
        yield ws


async def read_until(ws: ClientConnection, received: bytearray, needle: bytes, timeout: float = 20.0) -> None:
    """Append STDOUT payloads to ``received`` until ``needle`` is in it, then until output pauses."""
    deadline = time.monotonic() + timeout
    while needle not in received:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} never came; got {bytes(received[-300:])!r}"
        frame = decode(await asyncio.wait_for(ws.recv(), left))  # type: ignore[arg-type]
        if frame.channel == Channel.STDOUT:
            received += frame.payload
    while True:  # let the prompt finish drawing
        try:
            frame = decode(await asyncio.wait_for(ws.recv(), 0.5))  # type: ignore[arg-type]
        except TimeoutError:
            return
        if frame.channel == Channel.STDOUT:
            received += frame.payload


def client_screen(data: bytes, cols: int, rows: int) -> list[str]:
    vt = avt.Vt(cols, rows, scrollback_limit=0)
    vt.feed_str(data.decode())
    return [line.text.rstrip() for line in vt.view()]


async def test_render_at_shows_what_the_client_saw_and_play_works_by_id(
    app: typer.Typer, tmp_path: Path
) -> None:
    with stack(tmp_path) as s:
        received = bytearray()
        async with open_shell(s.url) as ws:
            await ws.send(encode(Channel.RESIZE, Resize(100, 30).serialize()))
            await read_until(ws, received, PROMPT_END.encode())
            await ws.send(
                encode(Channel.STDIN, b"printf '\\033[32mgreen-%s\\033[0m\\n' one two; echo SNAP-1\r")
            )
            await read_until(ws, received, b"SNAP-1\r\n")
            snapshot = bytes(received)
            await ws.send(encode(Channel.STDIN, b"clear; seq 1 40; echo SNAP-2\r"))
            await read_until(ws, received, b"SNAP-2\r\n")
            await ws.send(encode(Channel.STDIN, b"exit 0\r"))
            with contextlib.suppress(Exception):
                async for message in ws:
                    frame = decode(message)  # type: ignore[arg-type]
                    if frame.channel == Channel.STDOUT:
                        received += frame.payload
        (row,) = s.finished()
        opts = ["--data-dir", str(s.data_dir), "--db", s.db_url]
        header, events = read(s.cast_path(row))
        # The event whose output completes exactly the bytes the client had at the snapshot.
        total, moment = 0, None
        for ev in events:
            if ev.code == OUTPUT:
                total += len(ev.data.encode())
                if total == len(snapshot):
                    moment = ev.time
                    break
        assert moment is not None, "no event boundary at the snapshot"
        expected = client_screen(snapshot, 100, 30)
        assert any("green-two" in line for line in expected)
        result = runner.invoke(app, ["render", str(row.id), "--at", f"{moment:.6f}", *opts])
        assert result.exit_code == 0, result.stderr
        assert result.stdout.splitlines() == expected
        final = runner.invoke(app, ["render", str(row.id), *opts])
        assert final.stdout.splitlines() == client_screen(bytes(received), 100, 30)
        played = runner.invoke(app, ["play", str(row.id), *opts])
        assert played.exit_code == 0 and played.stdout_bytes == bytes(received)
        svg = runner.invoke(app, ["render", str(row.id), "--at", f"{moment:.6f}", "--format", "svg", *opts])
        assert 'fill="#00cd00"' in svg.stdout  # green kept
        transcript = runner.invoke(app, ["transcript", str(row.id), *opts])
        assert re.search(r"^\[00:\d\d\] \$ clear; seq 1 40; echo SNAP-2$", transcript.stdout, re.M)


async def test_follow_tails_a_live_connection_until_it_ends(tmp_path: Path) -> None:
    with stack(tmp_path) as s:
        async with open_shell(s.url) as ws:
            received = bytearray()
            await read_until(ws, received, PROMPT_END.encode())
            await ws.send(encode(Channel.STDIN, b"echo BEFORE-FOLLOW\r"))
            await read_until(ws, received, b"BEFORE-FOLLOW\r\n")
            wait_until(lambda: s.index.list_connections(), 10, "the connection in the index")
            (row,) = s.index.list_connections()
            wait_until(lambda: s.cast_path(row).stat().st_size > 0, 10, "the recording to be written")
            proc = subprocess.Popen(
                recorder_command(
                    "play", str(row.id), "--follow", "--data-dir", str(s.data_dir), "--db", s.db_url
                ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                seen = bytearray()

                def read_for(needle: bytes) -> None:
                    deadline = time.monotonic() + EXPECT_TIMEOUT
                    while needle not in seen:
                        assert time.monotonic() < deadline, (
                            f"{needle!r} not followed; got {bytes(seen[-300:])!r}"
                        )
                        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
                        if ready:
                            assert proc.stdout is not None
                            seen.extend(os.read(proc.stdout.fileno(), 65536))

                read_for(b"BEFORE-FOLLOW")  # the screen so far comes first
                await ws.send(encode(Channel.STDIN, b"echo LIVE-$((6*7))\r"))
                await read_until(ws, received, b"LIVE-42\r\n")
                await asyncio.to_thread(read_for, b"LIVE-42")
                await ws.send(encode(Channel.STDIN, b"exit 0\r"))
                with contextlib.suppress(Exception):
                    async for _ in ws:
                        pass
                code = await asyncio.to_thread(proc.wait, EXPECT_TIMEOUT)
                assert code == 0, proc.stderr.read() if proc.stderr else b""
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


# -- a real terminal ---------------------------------------------------------------------------------


def spawn_play(tmp_path: Path, cast: Path, *args: str) -> pexpect.spawn:
    """``recorder play`` in a real PTY, wrapped in a shell that saves ``stty -a`` before and after."""
    command = " ".join(f"'{a}'" for a in recorder_command("play", str(cast), *args))
    script = f'stty -a > before.txt; {command}; echo "rc=$?"; stty -a > after.txt'
    return pexpect.spawn("sh", ["-c", script], cwd=str(tmp_path), dimensions=(24, 80), timeout=EXPECT_TIMEOUT)


def lines_cast(tmp_path: Path, count: int, interval: float, word: str) -> Path:
    events = [Event(round(i * interval, 6), OUTPUT, f"{word}-{i:04d}\r\n") for i in range(1, count + 1)]
    return write_cast(tmp_path / f"{word}.cast", Header(version=2, width=80, height=24), events)


def child_pid(parent: int) -> int:
    def found() -> bool:
        return bool(Path(f"/proc/{parent}/task/{parent}/children").read_text().split())

    wait_until(found, 10, "recorder play to start")
    return int(Path(f"/proc/{parent}/task/{parent}/children").read_text().split()[0])


def test_q_mid_playback_exits_zero_and_restores_the_terminal(tmp_path: Path) -> None:
    cast = lines_cast(tmp_path, 2000, 0.05, "line")
    child = spawn_play(tmp_path, cast, "--speed", "10")
    child.expect("line-0020")
    lflags = termios.tcgetattr(child.child_fd)[3]  # the PTY's settings while playing
    child.send("q")
    child.expect(r"rc=(\d+)")
    assert child.match.group(1) == b"0"
    child.expect(pexpect.EOF)
    assert b"line-2000" not in child.before
    assert not lflags & (termios.ECHO | termios.ICANON)  # raw mode during playback
    assert (tmp_path / "before.txt").read_text() == (tmp_path / "after.txt").read_text()


def test_space_pauses_and_dot_steps_one_event_in_a_real_terminal(tmp_path: Path) -> None:
    cast = lines_cast(tmp_path, 60, 0.4, "step")
    child = spawn_play(tmp_path, cast)
    child.expect("step-0002")
    child.send(" ")
    last = 2
    while True:  # drain what arrived before the pause took effect (a loaded machine may be slow)
        try:
            child.expect(r"step-(\d{4})", timeout=1.0)
        except pexpect.TIMEOUT:
            break  # no line for 1 s where one was due every 0.4 s: paused
        last = int(child.match.group(1))
        assert last < 60, "the pause never took effect"
    with pytest.raises(pexpect.TIMEOUT):  # paused: nothing more comes
        child.expect(r"step-\d{4}", timeout=1.5)
    child.send(".")
    child.expect(f"step-{last + 1:04d}")
    with pytest.raises(pexpect.TIMEOUT):  # one step is one event
        child.expect(r"step-\d{4}", timeout=1.5)
    child.send(" ")  # resume
    child.expect(f"step-{last + 3:04d}")
    child.send("q")
    child.expect(r"rc=(\d+)")
    assert child.match.group(1) == b"0"
    child.expect(pexpect.EOF)
    assert (tmp_path / "before.txt").read_text() == (tmp_path / "after.txt").read_text()


def test_sigterm_restores_the_terminal_and_exits_143(tmp_path: Path) -> None:
    cast = lines_cast(tmp_path, 500, 0.1, "term")
    child = spawn_play(tmp_path, cast, "--at", "0:01")
    child.expect("term-0012")
    os.kill(child_pid(child.pid), signal.SIGTERM)
    child.expect(r"rc=(\d+)")
    assert child.match.group(1) == b"143"
    child.expect(pexpect.EOF)
    assert (tmp_path / "before.txt").read_text() == (tmp_path / "after.txt").read_text()


def test_play_in_a_terminal_leaves_the_alternate_screen_it_entered(tmp_path: Path) -> None:
    events = [Event(0.1, OUTPUT, "\x1b[?1049h\x1b[?25lfull-screen-app"), Event(30.0, OUTPUT, "never")]
    cast = write_cast(tmp_path / "alt.cast", Header(version=2, width=80, height=24), events)
    child = spawn_play(tmp_path, cast)
    child.expect("full-screen-app")
    child.send("q")
    child.expect(r"rc=(\d+)")
    assert child.match.group(1) == b"0"
    # The alternate screen is left and the cursor shown again before the shell gets the terminal.
    assert b"\x1b[?1049l" in child.before and b"\x1b[?25h" in child.before
    child.expect(pexpect.EOF)
