"""PtyProcess: real programs on real pseudo-terminals, driven from an asyncio loop."""

from __future__ import annotations

import os
import signal

import pytest

from recorder.errors import ShellSpawnError
from recorder.runtime.ptyproc import DEFAULT_SIZE, PtyProcess
from tests.procs import wait_until
from tests.runtime.wire import PtyOutput, run

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color", "LC_ALL": "C"}


def _start(*argv: str) -> tuple[PtyProcess, PtyOutput]:
    proc = PtyProcess.spawn(argv, env=ENV)
    out = PtyOutput()
    proc.start_reading(out.feed, out.end)
    return proc, out


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] == "Z"


def test_output_and_exit_code_arrive() -> None:
    async def scenario() -> tuple[bytes, int]:
        proc, out = _start("sh", "-c", "echo hello; exit 5")
        code = await proc.wait()
        await out.eof.wait()
        proc.close()
        return bytes(out.data), code

    assert run(scenario()) == (b"hello\r\n", 5)


def test_a_program_killed_by_a_signal_has_a_negative_return_code() -> None:
    async def scenario() -> int:
        proc, _ = _start("sh", "-c", "kill -TERM $$")
        code = await proc.wait()
        proc.close()
        return code

    assert run(scenario()) == -signal.SIGTERM


def test_every_byte_written_before_exit_is_read() -> None:
    size = 300_000

    async def scenario() -> bytes:
        proc, out = _start("sh", "-c", f"head -c {size} /dev/zero | tr '\\0' x")
        await proc.wait()
        await out.eof.wait()
        proc.close()
        return bytes(out.data)

    assert run(scenario()) == b"x" * size


def test_the_pty_is_the_programs_controlling_terminal_in_its_own_session() -> None:
    async def scenario() -> tuple[int, bytes]:
        # /dev/tty opens only for a process that has a controlling terminal.
        proc, out = _start("sh", "-c", "exec 3</dev/tty && echo ctty-ok; ps -o sid= -p $$")
        await proc.wait()
        await out.eof.wait()
        proc.close()
        return proc.pid, bytes(out.data)

    pid, data = run(scenario())
    assert b"ctty-ok" in data
    assert int(data.split(b"ctty-ok")[1].split()[0]) == pid


def test_resize_sets_the_terminal_size() -> None:
    async def scenario() -> tuple[tuple[int, int], tuple[int, int], bytes]:
        proc, out = _start("sh", "-c", "read _; stty size")
        before = proc.size()
        proc.resize(132, 43)
        after = proc.size()
        await proc.write(b"go\n")
        await proc.wait()
        await out.eof.wait()
        proc.close()
        return before, after, bytes(out.data)

    before, after, data = run(scenario())
    assert before == DEFAULT_SIZE
    assert after == (132, 43)
    assert b"43 132" in data


def test_large_input_is_written_in_full_despite_the_small_pty_buffer() -> None:
    size = 200_000

    async def scenario() -> bytes:
        proc, out = _start("sh", "-c", f"stty raw -echo; echo ready; head -c {size} | wc -c")
        await out.wait_for(b"ready")  # raw mode: no line limit, no echo
        await proc.write(b"y" * size)
        await proc.wait()
        await out.eof.wait()
        proc.close()
        return bytes(out.data)

    assert run(scenario()).split()[-1] == str(size).encode()


def test_pausing_stops_reading_and_resuming_continues() -> None:
    async def scenario() -> tuple[int, bytes]:
        proc, out = _start("sh", "-c", "read _; echo after-resume")
        proc.pause_reading()
        assert not proc.reading
        await proc.write(b"go\n")
        # While paused, the program's output waits in the kernel.
        await proc.wait()
        seen_while_paused = len(out.data)
        proc.resume_reading()
        await out.eof.wait()
        proc.close()
        return seen_while_paused, bytes(out.data)

    seen_while_paused, data = run(scenario())
    assert seen_while_paused == 0
    assert b"after-resume" in data


def test_hangup_ends_the_program_with_sighup() -> None:
    async def scenario() -> int:
        proc, out = _start("sh", "-c", "echo ready; sleep 30")
        await out.wait_for(b"ready")
        proc.hangup()
        code = await proc.wait()
        proc.close()
        return code

    assert run(scenario()) == -signal.SIGHUP


def test_kill_session_ends_background_jobs_too() -> None:
    async def scenario() -> tuple[int, int]:
        proc, out = _start("sh", "-c", "sleep 30 & echo BG=$!.; wait")
        match = await out.wait_for(rb"BG=(\d+)\.")
        background = int(match.group(1))
        proc.kill_session()
        code = await proc.wait()
        proc.close()
        return code, background

    code, background = run(scenario())
    assert code == -signal.SIGKILL
    wait_until(lambda: _gone(background), 10, "the background job to be killed")


def test_a_missing_program_is_a_spawn_error() -> None:
    async def scenario() -> None:
        PtyProcess.spawn(["/nonexistent/program"], env=ENV)

    with pytest.raises(ShellSpawnError, match="/nonexistent/program"):
        run(scenario())
