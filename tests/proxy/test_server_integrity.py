"""The proxy's recordings end to end: signed chains, kill -9, a real full disk, masked secrets.

Real runtime and proxy processes, real WebSockets over loopback, real PTYs. The disk-full tests
lower the proxy's RLIMIT_FSIZE (``prlimit`` on its pid): writes past the limit fail with EFBIG,
exactly as on a full disk, and the limit can be raised again as when space is freed.
"""

from __future__ import annotations

import asyncio
import io
import os
import resource
import signal
import sys
import time
import uuid
import zipfile
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from recorder.cast.integrity import KEY_FILE, Status, Verdict, load_signing_key, sidecar_path, verify_file
from recorder.cast.reader import cast_summary
from recorder.index.search import search
from recorder.protocol import Channel, decode, encode
from tests.procs import run_recorder, start_recorder, wait_until
from tests.proxy.conftest import Stack, proxy_args, stack
from tests.proxy.test_server import cast_events, collect, collect_until, output_of, shell

#: The proxy's file-size limit in the disk-full tests (bytes); the index stays well below it.
FSIZE_LIMIT = 3 * 1024 * 1024


def _verify(s: Stack, path: Path) -> Verdict:
    return verify_file(path, load_signing_key(s.data_dir / KEY_FILE).public_key())


async def test_a_finished_session_is_sealed_and_verifies_with_only_the_public_key(tmp_path: Path) -> None:
    with stack(tmp_path) as s:
        async with shell(s.url) as ws:
            await ws.send(
                encode(Channel.STDIN, b"for i in 1 2 3; do echo chained-$i; sleep 0.15; done; exit 3\r")
            )
            await collect(ws)
        (row,) = s.finished()
        path = s.cast_path(row)
        verdict = _verify(s, path)
        assert verdict.status is Status.OK, verdict
        assert verdict.checkpoint >= 2  # one per flushed batch, then the seal
        assert stat_mode(s.data_dir / KEY_FILE) == 0o600
        # Another machine: only the cast, its sidecar and the exported public key.
        key = run_recorder("key", "export", "--data-dir", str(s.data_dir))
        assert key.returncode == 0 and key.stdout.startswith("-----BEGIN PUBLIC KEY-----")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "key.pem").write_text(key.stdout)
        (elsewhere / "r.cast").write_bytes(path.read_bytes())
        (elsewhere / "r.cast.chain").write_bytes(sidecar_path(path).read_bytes())
        ok = run_recorder("verify", str(elsewhere / "r.cast"), "--public-key", str(elsewhere / "key.pem"))
        assert ok.returncode == 0 and ok.stdout.startswith("OK:"), ok
        by_id = run_recorder("verify", str(row.id), "--data-dir", str(s.data_dir), "--db", s.db_url)
        assert by_id.returncode == 0 and by_id.stdout.startswith("OK:"), by_id
        # A bundle carries the file as recorded, its chain and the public key: verifiable as it is.
        bundle = tmp_path / "b.zip"
        exported = run_recorder(
            "export", str(row.id), "--format", "bundle", "-o", str(bundle),
            "--data-dir", str(s.data_dir), "--db", s.db_url,
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        unpacked = tmp_path / "unpacked"
        with zipfile.ZipFile(bundle) as zf:
            zf.extractall(unpacked)
        assert (unpacked / "original.cast").read_bytes() == path.read_bytes()
        from_bundle = run_recorder(
            "verify", str(unpacked / "original.cast"), "--public-key", str(unpacked / "signing-key.pub.pem")
        )
        assert from_bundle.returncode == 0 and from_bundle.stdout.startswith("OK:"), from_bundle
        data = bytearray((elsewhere / "r.cast").read_bytes())
        at = data.index(b"chained-2")
        data[at + 8] = ord("9")
        (elsewhere / "r.cast").write_bytes(bytes(data))
        bad = run_recorder("verify", str(elsewhere / "r.cast"), "--public-key", str(elsewhere / "key.pem"))
        line = data[:at].count(b"\n") + 1
        assert bad.returncode == 3 and f"line {line} " in bad.stdout, bad


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def test_kill_9_leaves_a_recording_that_verifies_truncated_at_its_last_checkpoint(
    tmp_path: Path,
) -> None:
    with stack(tmp_path) as s:
        async with shell(s.url) as ws:
            await ws.send(encode(Channel.STDIN, b"echo before-the-kill\r"))
            await collect_until(ws, b"before-the-kill\r\n")
            (active,) = s.index.list_connections()
            path = s.cast_path(active)

            def checkpointed() -> bool:
                # The checkpoint follows the data within the same flush.
                data = path.read_bytes()
                return b"before-the-kill\\r\\n" in data[: _verify(s, path).bytes]

            wait_until(checkpointed, 10, "the output and a checkpoint after it to reach the disk")
            os.kill(s.proxy.proc.pid, signal.SIGKILL)
            s.proxy.wait()
        (row,) = s.index.list_connections()
        path = s.cast_path(row)
        verdict = _verify(s, path)
        assert verdict.status is Status.TRUNCATED, verdict
        assert verdict.checkpoint >= 1
        assert b"before-the-kill" in path.read_bytes()[: verdict.bytes]
        cli = run_recorder("verify", str(path), "--data-dir", str(s.data_dir))
        assert cli.returncode == 4 and cli.stdout.startswith("TRUNCATED:"), cli
        # Recovery marks it interrupted but cannot seal what it did not write.
        assert s.runtime is not None
        with start_recorder(*proxy_args(s.data_dir, s.db_url, s.runtime.url)):
            wait_until(lambda: s.index.list_connections()[0].status == "interrupted", 20, "recovery")
        assert _verify(s, path).status is Status.TRUNCATED


def _limit_file_size(pid: int, limit: int | None) -> None:
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard if limit is None else limit, hard))


async def _stderr_and_close(ws: object) -> tuple[str, int | None, int]:
    """STDERR text, the close code, and how many STDOUT bytes came before the connection ended."""
    from websockets.asyncio.client import ClientConnection

    assert isinstance(ws, ClientConnection)
    err, out = "", 0
    try:
        async for message in ws:
            assert isinstance(message, bytes)
            frame = decode(message)
            if frame.channel == Channel.STDERR:
                err += frame.payload.decode()
            elif frame.channel == Channel.STDOUT:
                out += len(frame.payload)
    except ConnectionClosed:
        pass
    return err, ws.close_code, out


async def test_a_full_disk_closes_the_connection_and_keeps_what_was_written(tmp_path: Path) -> None:
    with stack(tmp_path) as s:
        shell_id, session_id = uuid.uuid4().hex, str(uuid.uuid4())
        _limit_file_size(s.proxy.proc.pid, FSIZE_LIMIT)
        try:
            async with shell(s.url, shell_id, session_id) as ws:
                await ws.send(encode(Channel.STDIN, b"stty -echo; echo started; seq 1 2000000; echo done\r"))
                started = time.monotonic()
                err, code, relayed = await asyncio.wait_for(_stderr_and_close(ws), 60)
                cut_off_after = time.monotonic() - started
        finally:
            _limit_file_size(s.proxy.proc.pid, None)  # space is free again
        print(
            f"disk full: client cut off {cut_off_after:.3f} s after the burst began, {relayed} bytes relayed"
        )
        assert code == 1011
        assert "no longer be recorded" in err and "File too large" in err
        (row,) = s.finished()
        assert row.end_reason == "record-failure"
        path = s.cast_path(row)
        summary = cast_summary(path)
        assert not summary.truncated and summary.size == path.stat().st_size <= FSIZE_LIMIT
        assert "started" in output_of(path)
        verdict = _verify(s, path)
        assert verdict.status is Status.TRUNCATED and verdict.checkpoint >= 1
        # The shell was detached, not killed: it is still there to reattach to.
        async with shell(s.url, shell_id, session_id) as ws:
            await ws.send(encode(Channel.STDIN, b"echo still-$((40+2)); exit 0\r"))
            out, _ = await collect(ws)
        assert b"still-42" in out


async def test_continue_policy_keeps_the_session_and_marks_the_gap(tmp_path: Path) -> None:
    with stack(tmp_path, "--on-record-failure", "continue") as s:
        async with shell(s.url) as ws:
            await ws.send(encode(Channel.STDIN, b"stty -echo; echo begin\r"))
            await collect_until(ws, b"begin\r\n")
            _limit_file_size(s.proxy.proc.pid, FSIZE_LIMIT)
            try:
                await ws.send(encode(Channel.STDIN, b"seq 1 800000; echo burst-over\r"))
                await asyncio.wait_for(collect_until(ws, b"burst-over\r\n"), 60)
                # The writer may lag behind the relay by its whole buffer: free the "disk" only
                # once a write has failed.
                wait_until(lambda: "recording.gap" in s.proxy.text, 30, "a write to fail")
            finally:
                _limit_file_size(s.proxy.proc.pid, None)
            await ws.send(encode(Channel.STDIN, b"echo written-again; exit 0\r"))
            out, _ = await collect(ws)
            assert ws.close_code == 1000
        assert b"written-again" in out
        (row,) = s.finished()
        assert row.end_reason == "exit"
        path = s.cast_path(row)
        markers = [d for _, c, d in cast_events(path) if c == "m"]
        gaps = [m for m in markers if m.startswith("recording gap: ")]
        assert gaps and gaps[0].endswith(" bytes not recorded")
        assert any(m.startswith("recording gaps: ") for m in markers)
        assert "written-again" in output_of(path)
        # The chain covers exactly what was written: the recording is whole, with its gap marked.
        verdict = _verify(s, path)
        assert verdict.status is Status.OK, verdict


# -- secrets ------------------------------------------------------------------------------------------


async def _type_secret(ws: object, prompt: bytes, secret: str, *, per_key: bool) -> bytes:
    """Wait for the program's prompt (the command lines spell it differently), type, read its answer."""
    from websockets.asyncio.client import ClientConnection

    assert isinstance(ws, ClientConnection)
    await collect_until(ws, prompt)
    if per_key:
        for ch in secret:
            await ws.send(encode(Channel.STDIN, ch.encode()))
            await asyncio.sleep(0.04)
        await ws.send(encode(Channel.STDIN, b"\r"))
    else:
        await ws.send(encode(Channel.STDIN, secret.encode() + b"\r"))
    answer = await collect_until(ws, b"length=")
    while not answer.split(b"length=", 1)[1].count(b"\n"):
        answer += await collect_until(ws, b"\n")
    # The program got the whole secret: only the recording is masked.
    assert f"length={len(secret)}\r\n".encode() in answer
    return answer


def _everything_under(root: Path) -> list[tuple[Path, bytes]]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found.append((path, data))
            if path.suffix == ".zip":
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    found += [(path / name, zf.read(name)) for name in zf.namelist()]
    return found


async def test_secrets_typed_at_no_echo_prompts_are_nowhere_in_the_data(tmp_path: Path) -> None:
    secrets = [f"S3cr{kind}-{uuid.uuid4().hex[:10]}" for kind in ("readS", "sudoX", "getpW", "paste")]
    program = 'import getpass; s = getpass.getpass("Pass" "phrase: "); print("len" "gth=%d" % len(s))'
    getpass_cmd = f"{sys.executable} -c '{program}'"
    with stack(tmp_path) as s:
        async with shell(s.url) as ws:
            await ws.send(
                encode(Channel.STDIN, b"read -s -p 'Pass''word: ' pw; echo; echo len''gth=${#pw}\r")
            )
            await _type_secret(ws, b"Password: ", secrets[0], per_key=True)
            await ws.send(
                encode(
                    Channel.STDIN,
                    b"read -s -p '[sudo] pass''word for root: ' pw; echo; echo len''gth=${#pw}\r",
                )
            )
            await _type_secret(ws, b"password for root: ", secrets[1], per_key=True)
            await ws.send(encode(Channel.STDIN, getpass_cmd.encode() + b"\r"))
            await _type_secret(ws, b"Passphrase: ", secrets[2], per_key=True)
            await ws.send(encode(Channel.STDIN, getpass_cmd.encode() + b"\r"))
            await _type_secret(ws, b"Passphrase: ", secrets[3], per_key=False)  # pasted in one frame
            await ws.send(encode(Channel.STDIN, b"echo typed-in-the-clear; exit 0\r"))
            await collect(ws)
        (row,) = s.finished()
        wait_until(lambda: s.index.indexed(row.id) is not None, 30, "the recording to be indexed")
        path = s.cast_path(row)
        typed = "".join(d for _, c, d in cast_events(path) if c == "i")
        assert "echo typed-in-the-clear" in typed  # echoed input is recorded as typed
        assert typed.count("*") == sum(len(x) for x in secrets)
        assert search(s.index, '"typed in the clear"', kinds={"input"})
        for fmt, name in (("cast-v2", "e.cast"), ("txt", "e.txt"), ("html", "e.html"), ("bundle", "e.zip")):
            exported = run_recorder(
                "export", str(row.id), "--format", fmt, "-o", str(tmp_path / name),
                "--data-dir", str(s.data_dir), "--db", s.db_url,
            )  # fmt: skip
            assert exported.returncode == 0, exported.stderr
        files = _everything_under(tmp_path)
        assert any(p.name == "index.sqlite3" for p, _ in files) and any(
            p.suffix == ".chain" for p, _ in files
        )
        for secret in secrets:
            for search_kind in ("input", "output", "command"):
                assert not search(s.index, f'"{secret}"', kinds={search_kind})
            for p, data in files:
                assert secret.encode() not in data, f"{secret} found in {p}"
        assert _verify(s, path).status is Status.OK


async def test_no_mask_secrets_records_input_as_typed(tmp_path: Path) -> None:
    secret = f"visible-{uuid.uuid4().hex[:8]}"
    with stack(tmp_path, "--no-mask-secrets") as s:
        async with shell(s.url) as ws:
            await ws.send(
                encode(Channel.STDIN, b"read -s -p 'Pass''word: ' pw; echo; echo len''gth=${#pw}\r")
            )
            await _type_secret(ws, b"Password: ", secret, per_key=False)
            await ws.send(encode(Channel.STDIN, b"exit 0\r"))
            await collect(ws)
        (row,) = s.finished()
        assert secret.encode() in s.cast_path(row).read_bytes()
