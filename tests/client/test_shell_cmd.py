"""`recorder shell` and `recorder exec` as commands: options, errors, exit statuses, real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from http import HTTPStatus
from pathlib import Path

import pytest
from typer.testing import CliRunner
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from recorder.cli.app import app
from recorder.cli.credentials import LOCAL_TOKEN_FILE, local_token
from recorder.cli.shell_cmd import reattach_command
from recorder.client import Confirmed, ShellClient, ShellTarget
from tests.client.util import collect_until, edge_server, free_port, run, target
from tests.procs import RunningProcess, recorder_command, start_runtime, wait_until

runner = CliRunner()


def _exec(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`recorder exec <args>` as a real process; stdout and stderr captured as bytes."""
    return subprocess.run(
        recorder_command("exec", *args),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=30,
    )


# ---- help and bad arguments


@pytest.mark.parametrize("command", ["shell", "exec"])
def test_help_describes_the_command(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert (
        "--session-id" in result.output and "--shell-id" in result.output and "--ca-bundle" in result.output
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shell-id", "bad id"], "recorder: error: invalid shellId 'bad id'"),
        (["--runtime-arn", "arn:aws:s3:::bucket"], "recorder: error: not a bedrock-agentcore runtime ARN"),
        (["--session-id", "two words"], "recorder: error: invalid runtime session id"),
        (["--qualifier", "no spaces allowed"], "recorder: error: invalid qualifier"),
        (
            ["--url", "http://127.0.0.1:8765"],
            "recorder: error: bad URL 'http://127.0.0.1:8765': use ws:// or wss://",
        ),
        (
            ["--url", "ws://127.0.0.1:1", "--ca-bundle", "/etc/hostname"],
            "--ca-bundle applies to wss:// URLs only",
        ),
    ],
)
@pytest.mark.parametrize("command", ["shell", "exec"])
def test_bad_arguments_are_one_line_errors_with_exit_2(
    data_dir: Path, command: str, args: list[str], message: str
) -> None:
    extra = ["--", "true"] if command == "exec" else []
    result = runner.invoke(app, [command, *args, *extra])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in result.output


def test_exec_without_a_command_is_a_one_line_error(data_dir: Path) -> None:
    result = runner.invoke(app, ["exec", "--url", f"ws://127.0.0.1:{free_port()}"])
    assert result.exit_code == 2
    assert result.output.strip() == "recorder: error: no command given: recorder exec [OPTIONS] -- COMMAND..."


@pytest.mark.parametrize("command", ["shell", "exec"])
def test_connection_refused_is_one_line_and_exit_255(data_dir: Path, command: str) -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    extra = ["--", "true"] if command == "exec" else []
    proc = subprocess.run(
        recorder_command(command, "--url", url, *extra),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env={**os.environ, "RECORDER_DATA_DIR": str(data_dir)},
        timeout=30,
    )
    assert proc.returncode == 255
    assert proc.stderr.decode() == f"recorder: error: cannot connect to {url}: connection refused\n"
    assert proc.stdout == b""


# ---- what a server says reaches the terminal as text

#: A server's words trying to drive the user's terminal: a title, a clear screen, a forged line
#: of ours, a carriage return and an 8-bit CSI.
HOSTILE = "\x1b]0;owned\x07\x1b[2Jwiped\nrecorder: the shell ended normally\r\x9b31mred"


async def _exec_stderr(url: str, data_dir: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        *recorder_command("exec", "--url", url, "--", "true"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "RECORDER_DATA_DIR": str(data_dir)},
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode != 0
    return err.decode()


def _safe_lines(text: str, count: int) -> list[str]:
    """``text``'s lines: ``count`` of them, none forged, no control character in any."""
    assert text.endswith("\n") and text.count("\n") == count, text
    assert not any(c in text for c in "\x1b\x07\r\x9b"), text
    assert "wiped" in text and "\ufffd" in text  # the words are there, the controls made visible
    lines = text.splitlines()
    assert not any(line.startswith("recorder: the shell ended") for line in lines), text
    return lines


async def test_a_refusal_body_is_shown_on_one_line_without_control_characters(data_dir: Path) -> None:
    def refuse(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(HTTPStatus.FORBIDDEN, HOSTILE)

    async def unused(ws: ServerConnection) -> None:
        raise AssertionError("the handshake was refused")

    async with edge_server(unused, process_request=refuse) as url:
        err = await _exec_stderr(url, data_dir)
    (line,) = _safe_lines(err, 1)
    assert line.startswith("recorder: error: ") and "HTTP 403" in line


async def test_a_close_reason_is_shown_on_one_line_without_control_characters(data_dir: Path) -> None:
    async def close(ws: ServerConnection) -> None:
        await ws.close(1011, HOSTILE)

    async with edge_server(close) as url:
        err = await _exec_stderr(url, data_dir)
    message, reattach = _safe_lines(err, 2)  # ours: what happened, then how to reattach
    assert message.startswith("recorder: connection lost (close 1011 ") and "wiped" in message
    assert reattach.startswith("recorder shell --url ws://127.0.0.1:")


# ---- exec against the real runtime, as a process


def test_exec_prints_exact_bytes_and_exits_with_the_commands_status(
    runtime: RunningProcess, data_dir: Path
) -> None:
    proc = _exec("--url", runtime.url, "--", r"printf 'x\ty\r\nz\001'; exit 3")
    assert proc.stdout == b"x\ty\r\nz\x01"
    assert proc.returncode == 3
    assert proc.stderr == b""


def test_exec_joins_its_arguments_like_ssh(runtime: RunningProcess, data_dir: Path) -> None:
    proc = _exec("--url", runtime.url, "--", "printf", "'%s-'", "a", "b")
    assert (proc.returncode, proc.stdout) == (0, b"a-b-")


def test_exec_reports_a_signal_as_128_plus_n(runtime: RunningProcess, data_dir: Path) -> None:
    proc = _exec("--url", runtime.url, "--", "kill -KILL $$")
    assert proc.returncode == 137 and proc.stdout == b"" and proc.stderr == b""


def test_exec_stdin_is_forwarded_only_with_the_flag(runtime: RunningProcess, data_dir: Path) -> None:
    data = b"line one\nline two\x04\x03 binary \xff tail without newline"
    with_flag = _exec("--url", runtime.url, "--stdin", "--", "cat", stdin=data)
    assert (with_flag.returncode, with_flag.stdout) == (0, data)
    without = _exec("--url", runtime.url, "--", "cat; echo eof", stdin=data)
    assert (without.returncode, without.stdout) == (0, b"eof\n")


def test_exec_refuses_stdin_over_the_limit(runtime: RunningProcess, data_dir: Path) -> None:
    from recorder.client.oneshot import MAX_STDIN_SIZE

    proc = _exec("--url", runtime.url, "--stdin", "--", "wc -c", stdin=b"x" * (MAX_STDIN_SIZE + 1))
    assert proc.returncode == 250
    assert proc.stderr.decode() == (
        f"recorder: error: stdin of {MAX_STDIN_SIZE + 1} bytes exceeds the {MAX_STDIN_SIZE}-byte limit\n"
    )


def test_exec_in_an_existing_shell_is_refused_with_exit_250(runtime: RunningProcess, data_dir: Path) -> None:
    async def park() -> ShellClient:
        client = ShellClient(target(runtime.url))
        await client.connect()
        await collect_until(client, lambda ev: any(isinstance(e, Confirmed) for e in ev))
        await client.detach()
        return client

    parked = run(park())
    proc = _exec(
        "--url",
        runtime.url,
        "--session-id",
        parked.session_id,
        "--shell-id",
        parked.shell_id,
        "--",
        "echo no",
    )
    assert proc.returncode == 250
    assert b"already exists" in proc.stderr and proc.stdout == b""


def test_sigint_ends_the_remote_command_and_exits_130(runtime: RunningProcess, data_dir: Path) -> None:
    ids = ["--session-id", "sigint-session", "--shell-id", "sigint-shell"]
    proc = subprocess.Popen(
        recorder_command("exec", "--url", runtime.url, *ids, "--", "echo started; sleep 60"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"started\n"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 130
    assert proc.stderr.read() == b"recorder: received SIGINT: ended the shell\n"

    async def check_gone() -> bool:
        client = ShellClient(target(runtime.url, session_id="sigint-session", shell_id="sigint-shell"))
        await client.connect()
        events, _ = await collect_until(client, lambda ev: any(isinstance(e, Confirmed) for e in ev))
        await client.close(graceful=True)
        return [e.status.reconnected for e in events if isinstance(e, Confirmed)] == [False]

    assert run(check_gone()), "the remote shell outlived the interrupted exec"


def test_a_closed_stdout_stops_the_command_quietly_with_141(runtime: RunningProcess, data_dir: Path) -> None:
    proc = subprocess.Popen(
        recorder_command("exec", "--url", runtime.url, "--", "yes"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(4096) == b"y\n" * 2048
    proc.stdout.close()
    assert proc.wait(30) == 141
    assert proc.stderr.read() == b""


# ---- tokens


def test_the_local_token_file_is_used_for_a_loopback_url(home: Path, data_dir: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("local-secret\n")
    with start_runtime("--token-file", str(tokens), env={"HOME": str(home)}) as rt:
        refused = _exec("--url", rt.url, "--", "echo hi")
        assert refused.returncode == 255
        assert refused.stderr.decode() == (
            f"recorder: error: {rt.url} refused the shell connection: HTTP 401 Unauthorized: "
            "missing or invalid bearer token\n"
        )
        (data_dir / LOCAL_TOKEN_FILE).write_text("local-secret\n")
        accepted = _exec("--url", rt.url, "--", "echo hi")
        assert (accepted.returncode, accepted.stdout) == (0, b"hi\n")
        # An explicit token wins over the file.
        wrong = _exec("--url", rt.url, "--token", "not-it", "--", "echo hi")
        assert wrong.returncode == 255
        from_env = _exec("--url", rt.url, "--", "echo env", env={"RECORDER_TOKEN": "local-secret"})
        assert from_env.stdout == b"env\n"


def test_the_local_token_is_never_read_for_a_remote_url(data_dir: Path) -> None:
    (data_dir / LOCAL_TOKEN_FILE).write_text("local-secret\n")
    assert local_token("ws://127.0.0.1:8765") == "local-secret"
    assert local_token("wss://bastion.example") is None


def test_an_empty_local_token_file_means_no_token(data_dir: Path) -> None:
    (data_dir / LOCAL_TOKEN_FILE).write_text("\n")
    assert local_token("ws://127.0.0.1:8765") is None


def test_recorder_url_sets_the_default_url(runtime: RunningProcess, data_dir: Path) -> None:
    proc = _exec("--", "echo via-env", env={"RECORDER_URL": runtime.url})
    assert (proc.returncode, proc.stdout) == (0, b"via-env\n")


# ---- the reattach command


def test_the_reattach_command_is_quoted_and_never_carries_the_token(tmp_path: Path) -> None:
    bundle = tmp_path / "my ca.pem"
    bundle.write_text("unused")
    t = ShellTarget.create(
        "wss://bastion.example/x",
        qualifier="prod",
        shell_id="s-1",
        session_id="a'b",
        token="secret-token",
        ca_bundle=bundle,
    )
    command = reattach_command(ShellClient(t))
    assert command == (
        "recorder shell --url wss://bastion.example/x --runtime-arn "
        "arn:aws:bedrock-agentcore:us-east-1:000000000000:runtime/local --qualifier prod "
        f"--ca-bundle '{bundle}' --session-id 'a'\"'\"'b' --shell-id s-1"
    )
    assert "secret-token" not in command


def test_a_runtime_stopped_mid_exec_reports_going_away(home: Path, data_dir: Path) -> None:
    with start_runtime(env={"HOME": str(home)}) as rt:
        proc = subprocess.Popen(
            recorder_command("exec", "--url", rt.url, "--", "echo started; sleep 60"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == b"started\n"
        rt.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 253
        err = proc.stderr.read().decode()
        assert err.startswith("recorder: the server is going away (close 1001")
        wait_until(lambda: rt.proc.poll() is not None, 30, "the runtime to stop")
