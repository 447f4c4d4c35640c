"""The runtime as a client sees it: a real `recorder runtime` process, real PTYs, the public SDK."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from bedrock_agentcore.runtime.shell import OAuthAuth, ShellChannel, ShellSession
from websockets.exceptions import ConnectionClosed, InvalidStatus

from recorder.protocol import status
from recorder.protocol.status import Confirmation, Termination
from recorder.runtime import MAX_ATTACHED_SHELLS, RING_BUFFER_SIZE
from tests.procs import SESSION_HEADER, TEST_ARN, LocalShellClient, RunningProcess, start_runtime, wait_until
from tests.runtime.wire import (
    has_termination,
    new_id,
    open_ws,
    output_contains,
    read_until,
    recv_frame,
    run,
    shell_pid,
    statuses,
    stdout_of,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent, the runtime, reaps it).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


async def _sdk_run(
    client: LocalShellClient, command: str, **kwargs: str
) -> tuple[ShellSession, bytes, list[bytes]]:
    """Run ``command`` in a fresh SDK session until the shell ends; return the session, STDOUT, STATUS."""
    out, status_frames = b"", []
    async with ShellSession(client, TEST_ARN, **kwargs) as shell:
        await shell.send(command)
        async for frame in shell:
            if frame.channel == ShellChannel.STDOUT:
                out += frame.payload
            elif frame.channel == ShellChannel.STATUS:
                status_frames.append(frame.payload)
    return shell, out, status_frames


# ---- output and exit status, through the public SDK


def test_sdk_shell_runs_a_command_and_sees_exit_zero(client: LocalShellClient) -> None:
    shell, out, frames = run(_sdk_run(client, "echo hello-$((6*7)); exit\r"))
    assert b"hello-42" in out
    assert shell.exit_code == 0
    assert status.parse(frames[-1]) == Termination(exit_code=0)


def test_sdk_sees_a_non_zero_exit_code(client: LocalShellClient) -> None:
    shell, _, frames = run(_sdk_run(client, "exit 42\r"))
    assert shell.exit_code == 42
    end = status.parse(frames[-1])
    assert isinstance(end, Termination) and end.exit_code == 42 and end.signal is None


def test_a_shell_killed_by_a_signal_reports_the_signal_cause(client: LocalShellClient) -> None:
    shell, _, frames = run(_sdk_run(client, "kill -9 $$\r"))
    assert shell.exit_code == 137
    assert status.parse(frames[-1]) == Termination(
        exit_code=137, message="command terminated with exit code 137", signal=9
    )


def test_the_shell_sees_term_xterm_256color(client: LocalShellClient) -> None:
    _, out, _ = run(_sdk_run(client, 'echo "T=$TERM."; exit\r'))
    assert b"T=xterm-256color." in out


def test_all_output_is_sent_before_the_termination_status(runtime: RunningProcess) -> None:
    size = 200_000

    async def scenario() -> list[tuple[int, bytes]]:
        async with await open_ws(runtime.url, session_id=new_id(), shell_id="burst") as ws:
            # Octal 132 is 'Z': the echoed command line itself holds no Z.
            await ws.send(b"\x00head -c %d /dev/zero | tr '\\0' '\\132'; exit 3\r" % size)
            return await read_until(ws, has_termination)

    frames = run(scenario())
    assert stdout_of(frames).count(b"Z") == size
    assert frames[-1][0] == 0x03
    assert status.parse(frames[-1][1]) == Termination(
        exit_code=3, message="command terminated with exit code 3"
    )


# ---- the handshake


def test_101_response_and_first_status_carry_the_ids(runtime: RunningProcess) -> None:
    async def scenario() -> tuple[dict[str, str], tuple[int, bytes]]:
        # No shellId and no session id: the runtime makes both up and tells the client.
        async with await open_ws(runtime.url) as ws:
            assert ws.response is not None
            headers = dict(ws.response.headers.raw_items())
            return headers, await recv_frame(ws)

    headers, (channel, payload) = run(scenario())
    shell_id = headers["X-Amzn-Bedrock-AgentCore-Shell-Id"]
    assert shell_id and headers[SESSION_HEADER]
    assert channel == 0x03
    assert status.parse(payload) == Confirmation(shell_id=shell_id, reconnected=False)


def test_session_id_may_come_in_the_query(runtime: RunningProcess) -> None:
    session_id = new_id()
    url = (
        LocalShellClient(runtime.url).shell_url(TEST_ARN, "DEFAULT", "q1") + f"&{SESSION_HEADER}={session_id}"
    )

    async def scenario() -> str:
        from websockets.asyncio.client import connect

        async with connect(url) as ws:
            assert ws.response is not None
            return ws.response.headers[SESSION_HEADER]

    assert run(scenario()) == session_id


@pytest.mark.parametrize(
    ("target", "code", "reason"),
    [
        ("/runtimes/not-an-arn/ws/shells", 400, "ARN"),
        ("/runtimes/arn%3Aaws%3As3%3A%3A%3Abucket/ws/shells", 400, "ARN"),
        ("/runtimes/{arn}/ws/shells?shellId=-bad", 400, "shellId"),
        ("/runtimes/{arn}/ws/shells?shellId=" + "a" * 129, 400, "shellId"),
        ("/runtimes/{arn}/ws/shells?qualifier=bad%20one", 400, "qualifier"),
        ("/runtimes/{arn}/ws/shells?" + SESSION_HEADER + "=has%20space", 400, "session id"),
        ("/runtimes/{arn}/ws/other", 404, "no shell endpoint"),
        ("/", 404, "no shell endpoint"),
    ],
)
def test_bad_targets_are_refused_before_the_upgrade(
    runtime: RunningProcess, target: str, code: int, reason: str
) -> None:
    from urllib.parse import quote

    from websockets.asyncio.client import connect

    url = runtime.url + target.replace("{arn}", quote(TEST_ARN, safe=""))

    async def scenario() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as info:
            await connect(url)
        return info.value

    refused = run(scenario())
    assert refused.response.status_code == code
    body = refused.response.body.decode()
    assert reason in body
    assert body.endswith("\n") and body.count("\n") == 1


def test_a_bad_session_id_header_is_refused(runtime: RunningProcess) -> None:
    async def scenario() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as info:
            await open_ws(runtime.url, session_id="x" * 257, shell_id="s")
        return info.value

    assert run(scenario()).response.status_code == 400


# ---- resize


def test_resize_sets_the_size_stty_reports(client: LocalShellClient) -> None:
    async def scenario() -> bytes:
        out = b""
        async with ShellSession(client, TEST_ARN) as shell:
            await shell.resize(101, 33)
            await shell.send("stty size; exit\r")
            async for frame in shell:
                if frame.channel == ShellChannel.STDOUT:
                    out += frame.payload
        return out

    assert b"33 101" in run(scenario())


def test_resize_delivers_sigwinch_to_the_program(runtime: RunningProcess) -> None:
    program = (
        b"sh -c 'trap \"echo got-winch; exit 0\" WINCH; echo ready-$((1+1)); while :; do sleep 0.05; done'\r"
    )

    async def scenario() -> bytes:
        async with await open_ws(runtime.url, session_id=new_id(), shell_id="winch") as ws:
            await ws.send(b"\x00" + program)
            await read_until(ws, output_contains(b"ready-2"))
            await ws.send(b"\x04" + json.dumps({"width": 90, "height": 20}).encode())
            return stdout_of(await read_until(ws, output_contains(b"got-winch")))

    assert b"got-winch" in run(scenario())


def test_a_malformed_resize_gets_a_stderr_frame_and_the_connection_stays(runtime: RunningProcess) -> None:
    async def scenario() -> list[tuple[int, bytes]]:
        async with await open_ws(runtime.url, session_id=new_id(), shell_id="badresize") as ws:
            await ws.send(b"\x04{not json")
            await ws.send(b'\x04{"width": 0, "height": 10}')
            await ws.send(b"\x00echo still-$((2+3))\r")
            return await read_until(ws, output_contains(b"still-5"))

    frames = run(scenario())
    errors = [p.decode() for c, p in frames if c == 0x02]
    assert len(errors) == 2
    assert "not JSON" in errors[0]
    assert "width" in errors[1]


# ---- small frames


def test_heartbeat_is_echoed(runtime: RunningProcess) -> None:
    async def scenario() -> list[tuple[int, bytes]]:
        async with await open_ws(runtime.url, session_id=new_id(), shell_id="hb") as ws:
            await ws.send(b"\x05")
            return await read_until(ws, lambda f: any(c == 0x05 for c, _ in f))

    assert (0x05, b"") in run(scenario())


def test_rfc6455_ping_is_answered(runtime: RunningProcess) -> None:
    async def scenario() -> None:
        async with await open_ws(runtime.url, session_id=new_id(), shell_id="ping") as ws:
            pong = await ws.ping(b"are-you-there")
            await pong

    run(scenario())


def test_an_unknown_channel_is_ignored(runtime: RunningProcess) -> None:
    async def scenario() -> list[tuple[int, bytes]]:
        async with await open_ws(runtime.url, session_id=new_id(), shell_id="unknown") as ws:
            await ws.send(b"\x42future extension")
            await ws.send(b"\x01client cannot write stdout")
            await ws.send(b"")
            await ws.send(b"\x00echo alive-$((3*3))\r")
            return await read_until(ws, output_contains(b"alive-9"))

    frames = run(scenario())
    assert b"future extension" not in stdout_of(frames)
    assert not [p for c, p in frames if c == 0x02]


def test_a_text_message_closes_1003(runtime: RunningProcess) -> None:
    async def scenario() -> ConnectionClosed:
        async with await open_ws(runtime.url, session_id=new_id(), shell_id="text") as ws:
            await ws.send("echo hi\r")
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await ws.recv()
            return info.value

    closed = run(scenario())
    assert closed.rcvd is not None and closed.rcvd.code == 1003


def test_a_message_over_64_kib_closes_1009(runtime: RunningProcess) -> None:
    async def scenario() -> ConnectionClosed:
        async with await open_ws(runtime.url, session_id=new_id(), shell_id="big") as ws:
            # A message of exactly 64 KiB is allowed; one byte more is not.
            await ws.send(b"\x00" + b"#" * (64 * 1024 - 1))
            await ws.send(b"\x00" + b"#" * (64 * 1024))
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await ws.recv()
            return info.value

    closed = run(scenario())
    assert closed.rcvd is not None and closed.rcvd.code == 1009


# ---- ending a shell


def test_a_close_frame_ends_the_shell_and_closes_1000(runtime: RunningProcess) -> None:
    async def scenario() -> tuple[int, list[tuple[int, bytes]], ConnectionClosed]:
        async with await open_ws(runtime.url, session_id=new_id(), shell_id="closeme") as ws:
            # At the prompt: a SIGHUP that lands inside bash's prompt hooks can be deferred past
            # the grace period on a loaded machine (then SIGKILL ends it).
            pid = await shell_pid(ws, then_prompt=True)
            await ws.send(b"\xff")
            frames: list[tuple[int, bytes]] = []
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    frames.append(await recv_frame(ws))
            return pid, frames, info.value

    pid, frames, closed = run(scenario())
    assert closed.rcvd is not None and closed.rcvd.code == 1000
    end = status.parse([p for c, p in frames if c == 0x03][-1])
    assert isinstance(end, Termination) and end.signal == 1  # SIGHUP, as a closed terminal sends
    wait_until(lambda: not _alive(pid), 10, f"shell {pid} to end")


def test_sdk_close_without_close_frame_leaves_the_shell_for_reconnect(client: LocalShellClient) -> None:
    session_id, shell_id = new_id(), "keep"

    async def scenario() -> tuple[bytes, bytes]:
        async with ShellSession(client, TEST_ARN, session_id=session_id, shell_id=shell_id) as shell:
            await shell.send("export KEPT=yes-$((2*2))\r")
        # The SDK's close sent no CLOSE frame: the PTY, with its environment, is still there.
        out = b""
        async with ShellSession(client, TEST_ARN, session_id=session_id, shell_id=shell_id) as shell:
            await shell.send('echo "kept=$KEPT."; exit\r')
            async for frame in shell:
                if frame.channel == ShellChannel.STDOUT:
                    out += frame.payload
        return out, b""

    out, _ = run(scenario())
    assert b"kept=yes-4." in out


# ---- detach, reconnect, replay


#: The OSC 133 C mark: bash read the command line and starts it (nothing else is printed before the gate).
COMMAND_STARTED = b"\x1b]133;C\x07"


def _wait_detached(runtime: RunningProcess, shell_id: str) -> None:
    """Wait until the runtime logged that ``shell_id`` lost its client."""
    wait_until(lambda: f"shell.detached shell_id={shell_id} " in runtime.text, 10, f"{shell_id} to detach")


def _gated(command: bytes, go: Path, done: Path) -> bytes:
    """A STDIN frame that runs ``command`` once ``go`` exists, then creates ``done``."""
    return b"\x00until [ -e %s ]; do sleep 0.02; done; %s; touch %s\r" % (
        str(go).encode(),
        command,
        str(done).encode(),
    )


@pytest.mark.parametrize("drop", ["close", "abort"])
def test_reconnect_replays_output_produced_while_detached(
    runtime: RunningProcess, tmp_path: Path, drop: str
) -> None:
    session_id, shell_id = new_id(), f"replay-{drop}"
    go, done = tmp_path / "go", tmp_path / "done"

    async def first() -> None:
        ws = await open_ws(runtime.url, session_id=session_id, shell_id=shell_id)
        await read_until(ws, lambda f: len(statuses(f)) == 1)
        await ws.send(_gated(b"echo while-away-$((40+2))", go, done))
        await read_until(ws, output_contains(COMMAND_STARTED))  # everything before the gate was received
        if drop == "abort":
            assert ws.transport is not None
            ws.transport.abort()  # an abrupt network drop: no close handshake at all
        else:
            await ws.close()  # a clean WebSocket close, but no CLOSE frame

    async def second() -> list[tuple[int, bytes]]:
        async with await open_ws(runtime.url, session_id=session_id, shell_id=shell_id) as ws:
            frames = await read_until(ws, output_contains(b"while-away-42"))
            await ws.send(b"\x00exit\r")
            return frames

    run(first())
    _wait_detached(runtime, shell_id)
    go.touch()
    wait_until(done.exists, 10, "the detached shell to run its command")
    frames = run(second())
    assert frames[0][0] == 0x03
    assert status.parse(frames[0][1]) == Confirmation(shell_id=shell_id, reconnected=True)
    assert b"while-away-42" in stdout_of(frames)


def test_bytes_dropped_reports_output_lost_beyond_the_ring_buffer(
    runtime: RunningProcess, tmp_path: Path
) -> None:
    session_id, shell_id = new_id(), "overflow"
    go, done = tmp_path / "go", tmp_path / "done"
    size = RING_BUFFER_SIZE + 150_000

    async def first() -> None:
        async with await open_ws(runtime.url, session_id=session_id, shell_id=shell_id) as ws:
            await read_until(ws, lambda f: len(statuses(f)) == 1)
            # Octal 132 is 'Z': the echoed command line itself holds no Z.
            await ws.send(_gated(b"head -c %d /dev/zero | tr '\\0' '\\132'" % size, go, done))
            await read_until(ws, output_contains(COMMAND_STARTED))

    async def second() -> list[tuple[int, bytes]]:
        async with await open_ws(runtime.url, session_id=session_id, shell_id=shell_id) as ws:
            frames = await read_until(ws, lambda f: len(statuses(f)) >= 2)
            # Then the rest of the output (what the kernel still held) and a prompt after it.
            await ws.send(b"\x00echo end-$((1+1))\r")
            frames += await read_until(ws, output_contains(b"end-2"))
            await ws.send(b"\x00exit\r")
            return frames

    run(first())
    _wait_detached(runtime, shell_id)
    go.touch()
    wait_until(done.exists, 15, "the detached shell to write its output")
    frames = run(second())
    kinds = [c for c, _ in frames]
    second_status = kinds.index(0x03, 1)
    confirmations = [status.parse(p) for c, p in frames[: second_status + 1] if c == 0x03]
    assert confirmations[0] == Confirmation(shell_id=shell_id, reconnected=True)
    dropped = confirmations[1]
    assert isinstance(dropped, Confirmation) and dropped.reconnected and dropped.bytes_dropped
    replay = [p for c, p in frames[1:second_status] if c == 0x01]
    assert set(kinds[1:second_status]) == {0x01}
    assert all(len(p) + 1 <= 64 * 1024 for p in replay)
    assert 0 < sum(map(len, replay)) <= RING_BUFFER_SIZE
    # Nothing is lost without being counted: replayed + dropped + what the kernel still held == written.
    assert stdout_of(frames).count(b"Z") + dropped.bytes_dropped == size


def test_a_shell_that_exits_while_detached_reports_its_end_on_reconnect(
    runtime: RunningProcess, tmp_path: Path
) -> None:
    session_id, shell_id = new_id(), "exits-alone"
    go = tmp_path / "go"

    async def first() -> None:
        async with await open_ws(runtime.url, session_id=session_id, shell_id=shell_id) as ws:
            await ws.send(
                b"\x00until [ -e %s ]; do sleep 0.02; done; echo bye-$((2*3)); exit 4\r" % str(go).encode()
            )
            await read_until(ws, output_contains(COMMAND_STARTED))

    async def again() -> tuple[list[tuple[int, bytes]], ConnectionClosed]:
        frames: list[tuple[int, bytes]] = []
        async with await open_ws(runtime.url, session_id=session_id, shell_id=shell_id) as ws:
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    frames.append(await recv_frame(ws))
        return frames, info.value

    async def third() -> tuple[int, bytes]:
        async with await open_ws(runtime.url, session_id=session_id, shell_id=shell_id) as ws:
            return await recv_frame(ws)

    run(first())
    _wait_detached(runtime, shell_id)
    go.touch()
    wait_until(lambda: f"shell.exited shell_id={shell_id} " in runtime.text, 10, "the detached shell to exit")
    frames, closed = run(again())
    assert status.parse(frames[0][1]) == Confirmation(shell_id=shell_id, reconnected=True)
    assert b"bye-6" in stdout_of(frames)
    assert status.parse(frames[-1][1]) == Termination(
        exit_code=4, message="command terminated with exit code 4"
    )
    assert closed.rcvd is not None and closed.rcvd.code == 1000
    # The ended shell was handed over once; the ids are free for a new shell.
    channel, payload = run(third())
    assert status.parse(payload) == Confirmation(shell_id=shell_id, reconnected=False)


def test_a_second_client_kicks_the_first_with_4000(client: LocalShellClient) -> None:
    session_id, shell_id = new_id(), "contested"

    async def scenario() -> tuple[ShellSession, bytes]:
        first = ShellSession(client, TEST_ARN, session_id=session_id, shell_id=shell_id)
        await first.__aenter__()
        await first.send("echo first-$((1+1))\r")
        async for frame in first:
            if frame.channel == ShellChannel.STDOUT and b"first-2" in frame.payload:
                break
        out = b""
        async with ShellSession(client, TEST_ARN, session_id=session_id, shell_id=shell_id) as second:
            async for _ in first:  # ends when the runtime kicks the first client
                pass
            await second.send("echo second-$((2+2)); exit\r")
            async for frame in second:
                if frame.channel == ShellChannel.STDOUT:
                    out += frame.payload
        await first.close()
        return first, out

    first, out = run(scenario())
    assert first.kicked
    assert b"second-4" in out


def test_the_kicked_client_sees_close_4000_and_the_new_one_a_reconnect(runtime: RunningProcess) -> None:
    session_id, shell_id = new_id(), "kick-raw"

    async def scenario() -> tuple[ConnectionClosed, tuple[int, bytes]]:
        old = await open_ws(runtime.url, session_id=session_id, shell_id=shell_id)
        await recv_frame(old)
        async with await open_ws(runtime.url, session_id=session_id, shell_id=shell_id) as new:
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await old.recv()
            return info.value, await recv_frame(new)

    closed, (channel, payload) = run(scenario())
    assert closed.rcvd is not None and closed.rcvd.code == 4000
    assert "kicked" in closed.rcvd.reason
    assert channel == 0x03 and status.parse(payload) == Confirmation(shell_id=shell_id, reconnected=True)


# ---- the attached-shell limit


def test_an_eleventh_attached_shell_is_refused_429_and_detached_ones_do_not_count(
    runtime: RunningProcess,
) -> None:
    session_id = new_id()

    async def scenario() -> InvalidStatus:
        shells = [
            await open_ws(runtime.url, session_id=session_id, shell_id=f"s{i}")
            for i in range(MAX_ATTACHED_SHELLS)
        ]
        with pytest.raises(InvalidStatus) as info:
            await open_ws(runtime.url, session_id=session_id, shell_id="one-too-many")
        # Another session is not affected, and a client may still re-attach (kick) an attached shell.
        other = await open_ws(runtime.url, session_id=new_id(), shell_id="s0")
        again = await open_ws(runtime.url, session_id=session_id, shell_id="s0")
        await other.close()
        # Detach one: its shell lives on but no longer counts.
        await shells[1].close()
        while True:
            try:
                extra = await open_ws(runtime.url, session_id=session_id, shell_id="now-fits")
                break
            except InvalidStatus as exc:
                assert exc.response.status_code == 429
                await asyncio.sleep(0.05)
        for ws in [*shells, again, extra]:
            await ws.close()
        return info.value

    refused = run(scenario())
    assert refused.response.status_code == 429
    assert str(MAX_ATTACHED_SHELLS) in refused.response.body.decode()


# ---- the prompt marks


def test_the_default_shell_emits_osc_133_marks(runtime: RunningProcess) -> None:
    async def scenario() -> bytes:
        async with await open_ws(runtime.url, session_id=new_id(), shell_id="marks") as ws:
            await ws.send(b"\x00true\r")
            await ws.send(b"\x00(exit 7)\r")
            return stdout_of(await read_until(ws, output_contains(b"\x1b]133;D;7\x07")))

    out = run(scenario())
    assert re.search(rb"\x1b\]133;A\x07.*\x1b\]133;B\x07", out)
    assert b"\x1b]133;C\x07" in out
    assert b"\x1b]133;D;0\x07" in out


# ---- authentication

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def token_runtime(tmp_path_factory: pytest.TempPathFactory, home: Path) -> Iterator[RunningProcess]:
    """A runtime that requires a bearer token (the file holds two, one per line)."""
    token_file = tmp_path_factory.mktemp("auth") / "tokens"
    token_file.write_text(f"other-token\n\n  {TOKEN}  \n")
    with start_runtime("--token-file", str(token_file), env={"HOME": str(home)}) as running:
        yield running


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic czNjcmV0", f"Bearer {TOKEN}x"])
def test_a_missing_or_wrong_token_is_refused_401(
    token_runtime: RunningProcess, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    async def scenario() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as info:
            await open_ws(token_runtime.url, session_id=new_id(), shell_id="a", additional_headers=headers)
        return info.value

    refused = run(scenario())
    assert refused.response.status_code == 401
    assert refused.response.headers["WWW-Authenticate"] == "Bearer"


def test_a_wrong_token_in_the_subprotocol_is_refused_401(token_runtime: RunningProcess) -> None:
    client = LocalShellClient(token_runtime.url)

    async def scenario() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as info:
            async with ShellSession(client, TEST_ARN, auth=OAuthAuth(bearer_token="wrong")):
                pass
        return info.value

    assert run(scenario()).response.status_code == 401


def test_a_bearer_header_is_accepted(token_runtime: RunningProcess) -> None:
    client = LocalShellClient(token_runtime.url, headers={"Authorization": f"Bearer {TOKEN}"})
    shell, out, _ = run(_sdk_run(client, "echo authed-$((1+1)); exit\r"))
    assert b"authed-2" in out and shell.exit_code == 0


def test_the_sdk_oauth_subprotocol_is_accepted_and_the_sentinel_selected(
    token_runtime: RunningProcess,
) -> None:
    client = LocalShellClient(token_runtime.url)

    async def scenario() -> tuple[str | None, bytes, int | None]:
        out = b""
        async with ShellSession(client, TEST_ARN, auth=OAuthAuth(bearer_token=TOKEN)) as shell:
            ws = shell._ws  # the SDK keeps its websockets connection here
            selected = ws.subprotocol if ws is not None else None
            await shell.send("echo oauth-$((2+1)); exit\r")
            async for frame in shell:
                if frame.channel == ShellChannel.STDOUT:
                    out += frame.payload
        return selected, out, shell.exit_code

    selected, out, code = run(scenario())
    assert selected == "base64UrlBearerAuthorization"
    assert b"oauth-3" in out and code == 0


def test_without_auth_an_offered_bearer_subprotocol_still_connects(client: LocalShellClient) -> None:
    async def scenario() -> str | None:
        async with ShellSession(client, TEST_ARN, auth=OAuthAuth(bearer_token="anything")) as shell:
            ws = shell._ws
            return ws.subprotocol if ws is not None else None

    assert run(scenario()) == "base64UrlBearerAuthorization"


# ---- other shells, idle timeout, shutdown


def test_shell_option_runs_another_program(home: Path) -> None:
    async def scenario(url: str) -> tuple[bytes, int | None]:
        out = b""
        async with ShellSession(LocalShellClient(url), TEST_ARN) as shell:
            await shell.send("typed through cat\r")
            await shell.send_bytes(b"\x04")  # ^D on an empty line: cat reads end of file and exits 0
            async for frame in shell:
                if frame.channel == ShellChannel.STDOUT:
                    out += frame.payload
        return out, shell.exit_code

    with start_runtime("--shell", "cat -u", env={"HOME": str(home)}) as rt:
        out, code = run(scenario(rt.url))
    # The terminal echoes the line, then cat writes it back.
    assert out.count(b"typed through cat") == 2
    assert code == 0


def test_detached_shells_end_after_the_idle_timeout(home: Path) -> None:
    session_id, shell_id = new_id(), "idle"

    async def connect_and_drop(url: str) -> int:
        async with await open_ws(url, session_id=session_id, shell_id=shell_id) as ws:
            return await shell_pid(ws)

    async def reconnect(url: str) -> tuple[int, bytes]:
        async with await open_ws(url, session_id=session_id, shell_id=shell_id) as ws:
            return await recv_frame(ws)

    with start_runtime("--idle-timeout", "0.3", "--shell", "sh", env={"HOME": str(home)}) as rt:
        pid = run(connect_and_drop(rt.url))
        wait_until(lambda: not _alive(pid), 10, "the idle shell to be ended")
        assert f"shell.expired shell_id={shell_id} " in rt.text
        channel, payload = run(reconnect(rt.url))
    # The old shell is gone: the same ids now name a brand new shell.
    assert channel == 0x03 and status.parse(payload) == Confirmation(shell_id=shell_id, reconnected=False)


def test_sigterm_closes_clients_with_1001_ends_shells_and_exits_0(home: Path) -> None:
    async def scenario(rt: RunningProcess) -> tuple[list[int], ConnectionClosed]:
        session_id = new_id()
        attached = await open_ws(rt.url, session_id=session_id, shell_id="attached")
        pids = [await shell_pid(attached)]
        async with await open_ws(rt.url, session_id=session_id, shell_id="detached") as ws:
            pids.append(await shell_pid(ws))
        rt.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await attached.recv()
        return pids, info.value

    with start_runtime(env={"HOME": str(home)}) as rt:
        pids, closed = run(scenario(rt))
        assert rt.wait() == 0
    assert closed.rcvd is not None and closed.rcvd.code == 1001
    for pid in pids:
        assert not _alive(pid)
    # The runtime ended them itself (rather than leaving it to the kernel's hangup when it exited).
    for shell_id in ("attached", "detached"):
        assert f"shell.exited shell_id={shell_id} " in rt.text


def test_a_shell_that_cannot_start_is_an_internal_error_status(home: Path) -> None:
    async def scenario(url: str) -> tuple[list[tuple[int, bytes]], ConnectionClosed]:
        frames: list[tuple[int, bytes]] = []
        async with await open_ws(url, session_id=new_id(), shell_id="nope") as ws:
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    frames.append(await recv_frame(ws))
        return frames, info.value

    with start_runtime("--shell", "/nonexistent/shell-program", env={"HOME": str(home)}) as rt:
        frames, closed = run(scenario(rt.url))
    end = status.parse(frames[-1][1])
    assert isinstance(end, Termination) and end.internal_error
    assert end.message is not None and "/nonexistent/shell-program" in end.message
    assert closed.rcvd is not None and closed.rcvd.code == 1011


def test_sigterm_does_not_hang_on_input_a_program_never_reads(home: Path) -> None:
    async def scenario(rt: RunningProcess) -> int | None:
        ws = await open_ws(rt.url, session_id=new_id(), shell_id="stuck")
        await read_until(ws, output_contains(b"raw"))

        async def flood() -> None:
            # Far more than the PTY's input buffer holds: the runtime's write to it blocks.
            with contextlib.suppress(ConnectionClosed):
                for _ in range(64):
                    await ws.send(b"\x00" + b"x" * (64 * 1024 - 1))

        flooding = asyncio.get_running_loop().create_task(flood())
        await asyncio.sleep(0.5)  # setup only: let the input back up
        rt.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await ws.recv()
        flooding.cancel()
        return info.value.rcvd.code if info.value.rcvd else None

    # In raw mode a terminal queues input instead of discarding it, so the writer really waits.
    with start_runtime(
        "--shell", "sh -c 'stty raw -echo; echo raw; sleep 60'", env={"HOME": str(home)}
    ) as rt:
        code = run(scenario(rt))
        assert rt.wait() == 0
    assert code == 1001
