"""run_command (recorder exec) against a real `recorder runtime`: exact output, exit statuses, limits."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection

from recorder.client import Confirmed, Ending, EndKind, ShellClient, exit_status, run_command
from recorder.client.oneshot import MARKER_PREFIX, encode_command, start_line
from recorder.errors import (
    ConfigError,
    ExecError,
    ExecInputTooLarge,
    ExecStartTimeout,
    PreambleTooLarge,
    ShellInUse,
)
from tests.client.util import collect_until, drain, edge_server, free_port, output_has, run, target
from tests.procs import RunningProcess


def _exec(url: str, command: str, tmp_path: Path, **kwargs: object) -> tuple[bytes, Ending]:
    """Run ``command`` through run_command; its stdout is a real file. Returns (stdout, ending)."""
    out_path = tmp_path / "stdout"
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        client = ShellClient(target(url))
        ending = run(run_command(client, command, stdout_fd=fd, handle_signals=False, **kwargs))  # type: ignore[arg-type]
    finally:
        os.close(fd)
    return out_path.read_bytes(), ending


def test_output_is_exact_bytes_without_prompt_echo_or_crlf(runtime: RunningProcess, tmp_path: Path) -> None:
    out, ending = _exec(runtime.url, r"printf 'a\nb\tc\r\nd\000e\377\376'", tmp_path)
    assert out == b"a\nb\tc\r\nd\x00e\xff\xfe"
    assert ending.kind is EndKind.EXITED and exit_status(ending) == 0


def test_a_command_with_quotes_bangs_tabs_and_newlines_runs_as_sh_would_run_it(
    runtime: RunningProcess, tmp_path: Path
) -> None:
    command = (
        "printf '[%s]' \"it's\" 'bang!' 'tab\there' \"$((6*7))\" 'back\\slash'\nprintf '|second line|'\n"
    )
    out, ending = _exec(runtime.url, command, tmp_path)
    local = subprocess.run(["sh", "-c", command], stdin=subprocess.DEVNULL, capture_output=True, check=True)
    assert out == local.stdout == b"[it's][bang!][tab\there][42][back\\slash]|second line|"
    assert exit_status(ending) == 0


def test_a_command_longer_than_a_terminal_line_is_not_cut(runtime: RunningProcess, tmp_path: Path) -> None:
    payload = "0123456789" * 1500  # 15 000 bytes, far over the 4 KiB canonical-mode line
    out, _ = _exec(runtime.url, f"printf %s {payload}", tmp_path)
    assert out == payload.encode()


@pytest.mark.parametrize(
    ("command", "status"),
    [("true", 0), ("exit 3", 3), ("sh -c 'exit 200'", 200), ("kill -9 $$", 137), ("kill -TERM $$", 143)],
)
def test_the_exit_status_is_the_commands(
    runtime: RunningProcess, tmp_path: Path, command: str, status: int
) -> None:
    out, ending = _exec(runtime.url, command, tmp_path)
    assert out == b""
    assert ending.kind is EndKind.EXITED
    assert exit_status(ending) == status


def test_without_stdin_data_the_command_reads_end_of_file(runtime: RunningProcess, tmp_path: Path) -> None:
    out, _ = _exec(runtime.url, "cat; echo cat-ended-$?", tmp_path)
    assert out == b"cat-ended-0\n"


def test_stdin_data_reaches_the_command_byte_for_byte(runtime: RunningProcess, tmp_path: Path) -> None:
    data = bytes(range(256)) * 64 + os.urandom(100_000) + b"\x03\x04\x1a\r\n no newline at the end"
    out, ending = _exec(runtime.url, "cat", tmp_path, stdin_data=data)
    assert out == data
    assert exit_status(ending) == 0


def test_empty_stdin_data_is_an_immediate_end_of_file(runtime: RunningProcess, tmp_path: Path) -> None:
    out, _ = _exec(runtime.url, "wc -c", tmp_path, stdin_data=b"")
    assert out.strip() == b"0"


def test_exec_refuses_an_existing_shell_and_leaves_it_alone(runtime: RunningProcess, tmp_path: Path) -> None:
    async def main() -> None:
        owner = ShellClient(target(runtime.url))
        await owner.connect()
        await owner.send_input(b"MINE=untouched-$((1+1)); echo ready-$((2+2))\r")
        await collect_until(owner, output_has(b"ready-4"))
        await owner.detach()
        await drain(owner)

        intruder = ShellClient(target(runtime.url, shell_id=owner.shell_id, session_id=owner.session_id))
        with pytest.raises(ShellInUse, match="already exists"):
            await run_command(intruder, "echo should not run", stdout_fd=1, handle_signals=False)
        ending = intruder.ending
        assert ending is not None and ending.kind is EndKind.DETACHED

        back = ShellClient(target(runtime.url, shell_id=owner.shell_id, session_id=owner.session_id))
        await back.connect()
        await back.send_input(b"echo $MINE; exit\r")
        _, out = await collect_until(back)
        assert b"untouched-2" in out and b"should not run" not in out

    run(main())


def test_too_much_output_before_the_marker_fails_and_ends_the_shell(runtime: RunningProcess) -> None:
    async def main() -> None:
        client = ShellClient(target(runtime.url))
        with pytest.raises(PreambleTooLarge, match="first 16 bytes"):
            await run_command(client, "true", stdout_fd=1, max_preamble=16, handle_signals=False)
        ending = client.ending
        assert ending is not None and ending.kind in (EndKind.ENDED, EndKind.EXITED)

        again = ShellClient(target(runtime.url, shell_id=client.shell_id, session_id=client.session_id))
        await again.connect()
        events, _ = await collect_until(again, lambda ev: any(isinstance(e, Confirmed) for e in ev))
        assert [e.status.reconnected for e in events if isinstance(e, Confirmed)] == [False]
        await again.close(graceful=True)

    run(main())


def test_a_server_that_never_confirms_times_out() -> None:
    async def silent(conn: ServerConnection) -> None:
        await conn.wait_closed()

    async def main() -> None:
        async with edge_server(silent) as url:
            client = ShellClient(target(url), end_timeout=0.1)
            with pytest.raises(ExecStartTimeout, match="within 0.2 s .no confirmation"):
                await run_command(client, "true", stdout_fd=1, start_timeout=0.2, handle_signals=False)
        assert not client.connected

    run(main())


def test_a_shell_that_ends_before_the_marker_is_an_exec_error() -> None:
    from recorder.protocol import Channel
    from recorder.protocol import status as status_payload

    async def dies(conn: ServerConnection) -> None:
        await conn.send(bytes([Channel.STATUS]) + status_payload.confirmation("s"))
        await conn.recv()  # the RESIZE
        await conn.recv()  # the start line
        await conn.send(bytes([Channel.STDOUT]) + b"sh: stty: not found\r\n")
        await conn.send(bytes([Channel.STATUS]) + status_payload.exited(127))
        await conn.wait_closed()

    async def main() -> None:
        async with edge_server(dies) as url:
            with pytest.raises(ExecError, match=r"ended before the command started.*stty: not found"):
                await run_command(ShellClient(target(url)), "true", stdout_fd=1, handle_signals=False)

    run(main())


def test_size_limits_are_checked_before_connecting() -> None:
    url = f"ws://127.0.0.1:{free_port()}"  # nobody listens: reaching connect() would fail differently

    async def main() -> None:
        with pytest.raises(ExecInputTooLarge, match="command of 11 bytes exceeds the 10-byte limit"):
            await run_command(
                ShellClient(target(url)), "echo 123456", max_command_size=10, handle_signals=False
            )
        with pytest.raises(ExecInputTooLarge, match="stdin of 5 bytes exceeds the 4-byte limit"):
            await run_command(
                ShellClient(target(url)), "cat", stdin_data=b"12345", max_stdin_size=4, handle_signals=False
            )

    run(main())


def test_encode_command_refuses_blank_and_nul_commands() -> None:
    with pytest.raises(ConfigError, match="no command given"):
        encode_command("  ")
    with pytest.raises(ConfigError, match="NUL"):
        encode_command("echo a\0b")
    assert encode_command("echo é") == "echo é".encode()


def test_the_start_line_never_contains_the_marker_it_prints() -> None:
    line = start_line("abc123", 42)
    assert f"{MARKER_PREFIX}abc123".encode() not in line
    assert MARKER_PREFIX.encode() in line and b"abc123" in line
    assert b"head -c 42" in line and b"</dev/null" in line
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    with_stdin = start_line("abc123", 42, stdin_size=7)
    assert b"</dev/null" not in with_stdin and b"sh 7 " in with_stdin
