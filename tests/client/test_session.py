"""ShellClient against a real `recorder runtime` over loopback (and small edge servers for odd replies)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from recorder.client import (
    Confirmed,
    Diagnostic,
    EndKind,
    Other,
    ShellClient,
    ShellTarget,
    Shutdown,
    Terminated,
    describe,
    exit_status,
)
from recorder.client.session import MAX_ERROR_BODY
from recorder.errors import (
    ConfigError,
    ConnectFailed,
    HandshakeRejected,
    InvalidArn,
    InvalidShellId,
    ProtocolError,
    SessionClosed,
)
from recorder.protocol import LOCAL_RUNTIME_ARN, SESSION_HEADER, SHELL_ID_HEADER, Channel, Frame, Resize
from recorder.protocol import status as status_payload
from recorder.protocol.paths import is_loopback_url
from tests.client.util import (
    collect_until,
    drain,
    edge_server,
    free_port,
    output_has,
    run,
    target,
)
from tests.procs import RunningProcess, start_runtime

# ---- ShellTarget: validation before any connection


def test_target_builds_the_shell_url_with_the_quoted_arn_qualifier_and_shell_id() -> None:
    t = ShellTarget.create("ws://127.0.0.1:8765/", LOCAL_RUNTIME_ARN, qualifier="prod", shell_id="s1")
    assert t.url == (
        "ws://127.0.0.1:8765/runtimes/arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A000000000000%3Aruntime%2Flocal"
        "/ws/shells?qualifier=prod&shellId=s1"
    )
    assert t.shell_id == "s1" and t.qualifier == "prod"


def test_target_keeps_a_path_prefix_of_the_base_url() -> None:
    t = ShellTarget.create("wss://bastion.example/recorder", LOCAL_RUNTIME_ARN, shell_id="s1")
    assert t.url.startswith("wss://bastion.example/recorder/runtimes/")


def test_target_makes_fresh_ids_when_none_are_given() -> None:
    a, b = ShellTarget.create("ws://127.0.0.1:1"), ShellTarget.create("ws://127.0.0.1:1")
    assert a.shell_id != b.shell_id and a.session_id != b.session_id
    assert a.qualifier == "DEFAULT"


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://127.0.0.1:8765", "use ws:// or wss://"),
        ("ws://", "no host"),
        ("ws://127.0.0.1:8765?x=1", "no query string"),
        ("ws://127.0.0.1:99999", "bad URL"),
    ],
)
def test_target_refuses_a_bad_url(url: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        ShellTarget.create(url)


def test_target_refuses_bad_ids_arn_and_qualifier() -> None:
    with pytest.raises(InvalidArn):
        ShellTarget.create("ws://127.0.0.1:1", "arn:aws:s3:::bucket")
    with pytest.raises(InvalidShellId):
        ShellTarget.create("ws://127.0.0.1:1", shell_id="-starts-with-dash")
    with pytest.raises(ProtocolError):
        ShellTarget.create("ws://127.0.0.1:1", session_id="has space")
    with pytest.raises(ProtocolError):
        ShellTarget.create("ws://127.0.0.1:1", qualifier="bad qualifier")


def test_target_refuses_a_token_with_spaces_and_a_ca_bundle_without_tls(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="token"):
        ShellTarget.create("ws://127.0.0.1:1", token="two words")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not used")
    with pytest.raises(ConfigError, match="wss://"):
        ShellTarget.create("ws://127.0.0.1:1", ca_bundle=bundle)
    with pytest.raises(ConfigError, match="not a readable file"):
        ShellTarget.create("wss://127.0.0.1:1", ca_bundle=tmp_path / "missing.pem")


def test_the_token_is_not_in_the_target_repr() -> None:
    assert "sekrit" not in repr(ShellTarget.create("ws://127.0.0.1:1", token="sekrit"))


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("ws://127.0.0.1:8765", True),
        ("ws://127.1.2.3:8765", True),
        ("ws://localhost:8765", True),
        ("ws://[::1]:8765", True),
        ("wss://bastion.example", False),
        ("ws://10.0.0.1:8765", False),
    ],
)
def test_is_loopback_url(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


# ---- against the real runtime


def test_a_command_runs_and_the_exit_status_ends_the_connection(runtime: RunningProcess) -> None:
    async def main() -> None:
        async with ShellClient(target(runtime.url)) as client:
            await client.send_input(b"echo $((6*7))x; exit 7\r")
            events, out = await collect_until(client)
        assert b"42x" in out
        confirmations = [e.status for e in events if isinstance(e, Confirmed)]
        assert confirmations and confirmations[0].shell_id == client.shell_id
        assert not confirmations[0].reconnected
        assert [e.status.exit_code for e in events if isinstance(e, Terminated)] == [7]
        ending = client.ending
        assert ending is not None and ending.kind is EndKind.EXITED
        assert exit_status(ending) == 7 and describe(ending) is None

    run(main())


def test_the_ids_in_use_are_the_ones_the_runtime_confirmed(runtime: RunningProcess) -> None:
    async def main() -> None:
        t = target(runtime.url, shell_id="named-shell", session_id="named-session")
        async with ShellClient(t) as client:
            assert (client.shell_id, client.session_id) == ("named-shell", "named-session")
            await client.send_input(b"exit\r")
            events, _ = await collect_until(client)
        assert [e.status.shell_id for e in events if isinstance(e, Confirmed)] == ["named-shell"]

    run(main())


def test_resize_sets_the_remote_terminal_size(runtime: RunningProcess) -> None:
    async def main() -> None:
        async with ShellClient(target(runtime.url)) as client:
            await client.resize(Resize(123, 45))
            await client.send_input(b"stty size; exit\r")
            _, out = await collect_until(client)
        assert b"45 123" in out

    run(main())


def test_a_paste_larger_than_one_message_arrives_whole(runtime: RunningProcess) -> None:
    paste = os.urandom(300 * 1024)  # several 64 KiB messages; a single one would be closed 1009

    async def main() -> None:
        async with ShellClient(target(runtime.url)) as client:
            # Raw mode first, so the bytes reach head unchanged; the paste waits for the go-ahead.
            await client.send_input(b"stty raw -echo; echo go-$((1+1)); head -c 307200 | sha256sum; exit\r")
            await collect_until(client, output_has(b"go-2"))
            await client.send_input(paste)
            _, out = await collect_until(client)
        assert hashlib.sha256(paste).hexdigest().encode() in out
        ending = client.ending
        assert ending is not None and ending.kind is EndKind.EXITED

    run(main())


def test_detach_keeps_the_shell_and_a_reattach_finds_its_state(runtime: RunningProcess) -> None:
    async def main() -> None:
        first = ShellClient(target(runtime.url))
        await first.connect()
        await first.send_input(b"KEPT=still-$((40+2))-here; echo set-$((1+1))\r")
        await collect_until(first, output_has(b"set-2"))
        await first.detach()
        ending = await drain(first)
        assert ending.kind is EndKind.DETACHED and ending.shell_alive and exit_status(ending) == 0

        again = ShellClient(target(runtime.url, shell_id=first.shell_id, session_id=first.session_id))
        await again.connect()
        await again.send_input(b"echo $KEPT; exit\r")
        events, out = await collect_until(again)
        assert b"still-42-here" in out
        assert any(isinstance(e, Confirmed) and e.status.reconnected for e in events)

    run(main())


def test_graceful_close_ends_the_remote_shell(runtime: RunningProcess) -> None:
    async def main() -> None:
        first = ShellClient(target(runtime.url))
        await first.connect()
        await first.close(graceful=True)
        ending = first.ending
        assert ending is not None and ending.kind is EndKind.ENDED and not ending.shell_alive

        # The same ids now open a new shell: the old one is gone.
        again = ShellClient(target(runtime.url, shell_id=first.shell_id, session_id=first.session_id))
        await again.connect()
        events, _ = await collect_until(again, lambda ev: any(isinstance(e, Confirmed) for e in ev))
        assert [e.status.reconnected for e in events if isinstance(e, Confirmed)] == [False]
        await again.close(graceful=True)

    run(main())


def test_an_abrupt_close_leaves_the_shell_for_a_reattach(runtime: RunningProcess) -> None:
    async def main() -> None:
        first = ShellClient(target(runtime.url))
        await first.connect()
        await first.close(graceful=False)
        ending = first.ending
        assert ending is not None and ending.kind is EndKind.DISCONNECTED and ending.close_code == 1006

        again = ShellClient(target(runtime.url, shell_id=first.shell_id, session_id=first.session_id))
        await again.connect()
        events, _ = await collect_until(again, lambda ev: any(isinstance(e, Confirmed) for e in ev))
        assert [e.status.reconnected for e in events if isinstance(e, Confirmed)] == [True]
        await again.close(graceful=True)

    run(main())


def test_a_second_client_on_the_same_shell_kicks_the_first(runtime: RunningProcess) -> None:
    async def main() -> None:
        first = ShellClient(target(runtime.url))
        await first.connect()
        pending = asyncio.ensure_future(drain(first))
        second = ShellClient(target(runtime.url, shell_id=first.shell_id, session_id=first.session_id))
        await second.connect()
        ending = await pending
        assert ending.kind is EndKind.KICKED and ending.close_code == 4000
        assert describe(ending) == "kicked: another client attached to this shell"
        assert exit_status(ending) == 254
        await second.close(graceful=True)

    run(main())


def test_sending_after_the_end_raises_session_closed(runtime: RunningProcess) -> None:
    async def main() -> None:
        client = ShellClient(target(runtime.url))
        await client.connect()
        await client.close(graceful=True)
        with pytest.raises(SessionClosed):
            await client.send_input(b"echo too late\r")
        with pytest.raises(SessionClosed):
            await client.resize(Resize(80, 24))

    run(main())


def test_a_bad_resize_brings_a_diagnostic_on_stderr(runtime: RunningProcess) -> None:
    async def main() -> None:
        async with ShellClient(target(runtime.url)) as client:
            await client.send_frame(Frame(Channel.RESIZE, b"not json"))
            events, _ = await collect_until(client, lambda ev: any(isinstance(e, Diagnostic) for e in ev))
            await client.close(graceful=True)
        assert any("RESIZE" in e.text for e in events if isinstance(e, Diagnostic))

    run(main())


def test_going_away_when_the_runtime_shuts_down(home: Path) -> None:
    with start_runtime(env={"HOME": str(home)}) as rt:

        async def main() -> None:
            client = ShellClient(target(rt.url))
            await client.connect()
            await collect_until(client, lambda ev: any(isinstance(e, Confirmed) for e in ev))
            rt.send_signal(signal.SIGTERM)
            ending = await drain(client)
            assert ending.kind is EndKind.GOING_AWAY and ending.close_code == 1001
            assert exit_status(ending) == 253
            assert "going away" in (describe(ending) or "")

        run(main())
        assert rt.wait() == 0


def test_connection_refused_is_one_line(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}"

    async def main() -> None:
        with pytest.raises(ConnectFailed) as caught:
            await ShellClient(target(url)).connect()
        assert str(caught.value) == f"cannot connect to {url}: connection refused"

    run(main())


def test_the_token_goes_as_a_bearer_header_and_its_absence_is_refused_401(home: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("right-token\n")
    with start_runtime("--token-file", str(tokens), env={"HOME": str(home)}) as rt:

        async def main() -> None:
            with pytest.raises(HandshakeRejected) as caught:
                await ShellClient(target(rt.url)).connect()
            assert caught.value.status == 401
            assert str(caught.value) == (
                f"{rt.url} refused the shell connection: "
                "HTTP 401 Unauthorized: missing or invalid bearer token"
            )
            with pytest.raises(HandshakeRejected, match="HTTP 401"):
                await ShellClient(target(rt.url, token="wrong-token")).connect()
            async with ShellClient(target(rt.url, token="right-token")) as client:
                await client.send_input(b"exit 4\r")
                await drain(client)
            ending = client.ending
            assert ending is not None and exit_status(ending) == 4

        run(main())


def test_too_many_shells_is_refused_429_with_the_reason(home: Path) -> None:
    with start_runtime("--max-shells", "1", env={"HOME": str(home)}) as rt:

        async def main() -> None:
            first = ShellClient(target(rt.url))
            await first.connect()
            with pytest.raises(HandshakeRejected) as caught:
                await ShellClient(target(rt.url, session_id=first.session_id)).connect()
            assert caught.value.status == 429
            assert "HTTP 429" in str(caught.value) and "attached shells" in str(caught.value)
            await first.close(graceful=True)

        run(main())


# ---- replies the runtime does not make, from a small scripted server


def test_an_http_error_body_is_one_line_and_cut_at_the_limit() -> None:
    body = "first line\n" + "x" * 5000

    def refuse(conn: ServerConnection, request: Request) -> Response:
        return conn.respond(403, body)

    async def main() -> None:
        async with edge_server(_idle, process_request=refuse) as url:
            with pytest.raises(HandshakeRejected) as caught:
                await ShellClient(target(url)).connect()
        error = caught.value
        assert error.status == 403
        assert "\n" not in str(error) and str(error).startswith(
            f"{url} refused the shell connection: HTTP 403"
        )
        assert len(error.body) == MAX_ERROR_BODY and error.body.startswith("first line xxx")
        assert error.body.endswith("…")

    run(main())


def test_a_bad_request_status_is_reported_with_its_body() -> None:
    def refuse(conn: ServerConnection, request: Request) -> Response:
        return conn.respond(400, "bad qualifier\n")

    async def main() -> None:
        async with edge_server(_idle, process_request=refuse) as url:
            with pytest.raises(HandshakeRejected, match=r"HTTP 400 Bad Request: bad qualifier$"):
                await ShellClient(target(url)).connect()

    run(main())


async def _idle(conn: ServerConnection) -> None:
    await conn.wait_closed()


def test_ids_from_the_101_headers_win_and_odd_frames_are_handled() -> None:
    seen: list[Headers] = []

    def answer_ids(conn: ServerConnection, request: Request, response: Response) -> None:
        seen.append(request.headers)
        response.headers[SHELL_ID_HEADER] = "server-shell"
        response.headers[SESSION_HEADER] = "server-session"

    async def script(conn: ServerConnection) -> None:
        await conn.send(bytes([Channel.STATUS]) + status_payload.confirmation("server-shell"))
        await conn.send("a text message, which the protocol does not use")
        await conn.send(bytes([Channel.HEARTBEAT]))
        await conn.send(bytes([0x42]) + b"future channel")
        await conn.send(bytes([Channel.STATUS]) + b"{not json")
        await conn.send(bytes([Channel.STDOUT]) + b"bye")
        await conn.send(bytes([Channel.CLOSE]))
        await conn.close()

    async def main() -> None:
        async with edge_server(script, process_response=answer_ids) as url:
            client = ShellClient(target(url, shell_id="sent-shell", session_id="sent-session", token="tok-1"))
            await client.connect()
            assert (client.shell_id, client.session_id) == ("server-shell", "server-session")
            events, out = await collect_until(client)
        assert seen[0][SESSION_HEADER] == "sent-session"
        assert seen[0]["Authorization"] == "Bearer tok-1"
        assert "shellId=sent-shell" in client.target.url
        assert out == b"bye"
        others = [e.frame for e in events if isinstance(e, Other)]
        assert [(f.channel, f.payload) for f in others] == [(0x42, b"future channel"), (0x03, b"{not json")]
        assert any(isinstance(e, Shutdown) for e in events)
        ending = client.ending
        assert ending is not None and ending.kind is EndKind.SHUTDOWN and exit_status(ending) == 251

    run(main())


def test_unanswered_pings_end_the_connection() -> None:
    async def deaf(conn: ServerConnection) -> None:
        # Stop reading: the client's pings go unanswered, as behind a dead intermediary.
        conn.transport.pause_reading()
        await conn.wait_closed()

    async def main() -> None:
        async with edge_server(deaf, close_timeout=0.1) as url:
            client = ShellClient(target(url), ping_interval=0.05, ping_timeout=0.1, close_timeout=0.1)
            await client.connect()
            ending = await drain(client)
        assert ending.kind is EndKind.DISCONNECTED and ending.close_code == 1006
        assert exit_status(ending) == 252

    run(main())


def test_a_server_that_never_answers_the_upgrade_fails_after_the_open_timeout() -> None:
    async def main() -> None:
        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # accept the TCP connection, never answer the HTTP upgrade
            writer.close()

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            client = ShellClient(target(f"ws://127.0.0.1:{port}"), open_timeout=0.2)
            with pytest.raises(ConnectFailed, match=r"no answer within 0.2 s$"):
                await client.connect()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_input_is_split_into_messages_of_at_most_max_message_size() -> None:
    received: list[bytes] = []

    async def record(conn: ServerConnection) -> None:
        async for message in conn:
            assert isinstance(message, bytes)
            received.append(message)

    async def main() -> None:
        async with edge_server(record) as url:
            client = ShellClient(target(url), max_message_size=100)
            await client.connect()
            await client.send_input(bytes(range(256)) * 4)
            await client.detach()
        assert all(len(m) <= 100 and m[0] == Channel.STDIN for m in received)
        assert [len(m) for m in received] == [100] * 10 + [35]
        assert b"".join(m[1:] for m in received) == bytes(range(256)) * 4

    run(main())


def test_graceful_close_waits_at_most_the_end_timeout_for_the_server() -> None:
    got_close_frame = asyncio.Event()

    async def stubborn(conn: ServerConnection) -> None:
        # Reads the CLOSE frame but neither ends anything nor closes: the client must not hang.
        async for message in conn:
            if message == bytes([Channel.CLOSE]):
                got_close_frame.set()

    async def main() -> None:
        async with edge_server(stubborn) as url:
            client = ShellClient(target(url), end_timeout=0.2)
            await client.connect()
            await client.close(graceful=True)
            assert got_close_frame.is_set()
        ending = client.ending
        assert ending is not None and ending.kind is EndKind.ENDED and exit_status(ending) == 0

    run(main())
