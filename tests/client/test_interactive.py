"""Interactive: `recorder shell` under a real pseudo-terminal (pexpect); run_shell on a pty pair."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import avt
import pexpect
import pytest

from recorder.client import EndKind, ShellClient, TerminalIO, run_shell
from recorder.protocol import Channel, Frame
from tests.client.util import collect_until, run, target
from tests.procs import RunningProcess, recorder_command, start_runtime, wait_until

PROMPT = re.compile(rb"[#$] ")
REATTACH = re.compile(rb"^(recorder shell --url .*?)\r?$", re.M)
#: Safety net for one expect (never asserted as a duration).
EXPECT_TIMEOUT = 20


@pytest.fixture
def env(tmp_path: Path, home: Path) -> dict[str, str]:
    """The environment of a spawned client: an empty data dir (no local token), no proxy variables."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY") and k != "RECORDER_TOKEN"}
    return {**keep, "RECORDER_DATA_DIR": str(data), "HOME": str(home), "TERM": "xterm-256color"}


def spawn(env: dict[str, str], *args: str, rows: int = 24, cols: int = 80) -> pexpect.spawn:
    """`recorder <args>` on a fresh pseudo-terminal."""
    argv = recorder_command(*args)
    return pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(rows, cols), timeout=EXPECT_TIMEOUT)


def spawn_shell(env: dict[str, str], url: str, *args: str, rows: int = 24, cols: int = 80) -> pexpect.spawn:
    """`recorder shell --url <url> <args>`, waited for until the remote prompt shows."""
    child = spawn(env, "shell", "--url", url, *args, rows=rows, cols=cols)
    child.expect(PROMPT)
    return child


def finish(child: pexpect.spawn) -> int:
    """Wait for the child to end; its exit status (128+N for a signal)."""
    child.expect(pexpect.EOF)
    child.close()
    if child.exitstatus is None:
        return 128 + int(child.signalstatus)
    return int(child.exitstatus)


def reattach_argv(text: bytes) -> list[str]:
    """The reattach command printed in ``text``, split into argv (without the program name)."""
    match = REATTACH.search(text)
    assert match, f"no reattach command in {text!r}"
    argv = shlex.split(match.group(1).decode())
    assert argv[:2] == ["recorder", "shell"]
    return argv[1:]


def child_of(pid: int) -> int:
    """The pid of the only child process of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    assert len(found) == 1, f"expected one child of {pid}, found {found}"
    return found[0]


# ---- typing, output, exit status


def test_typed_command_shows_its_output_and_remote_exit_3_is_ours(
    runtime: RunningProcess, env: dict[str, str]
) -> None:
    child = spawn_shell(env, runtime.url)
    child.sendline("echo $((6*7))-typed")
    child.expect("42-typed")
    child.sendline("exit 3")
    assert finish(child) == 3


def test_ctrl_bracket_detaches_and_the_printed_command_reattaches_with_state(
    runtime: RunningProcess, env: dict[str, str]
) -> None:
    child = spawn_shell(env, runtime.url)
    child.sendline("KEPT=value-$((40+2)); echo set-$((1+1))")
    child.expect("set-2")
    child.expect(PROMPT)
    child.send("\x1d")
    child.expect("detached, the shell keeps running; reattach with:")
    assert finish(child) == 0
    argv = reattach_argv(child.before)
    assert "--session-id" in argv and "--shell-id" in argv

    again = spawn(env, *argv)
    again.expect("reattached to shell")
    again.sendline("echo got-$KEPT")
    again.expect("got-value-42")
    again.sendline("exit 5")
    assert finish(again) == 5


def test_raw_mode_while_attached_and_the_terminal_restored_after_detach(
    runtime: RunningProcess, env: dict[str, str], tmp_path: Path
) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    script = (
        f"stty -g > {before}; {shlex.join(recorder_command('shell', '--url', runtime.url))}; "
        f"echo wrapper-rc=$?; stty -g > {after}"
    )
    child = pexpect.spawn("bash", ["--norc", "--noprofile", "-c", script], env=env, timeout=EXPECT_TIMEOUT)
    child.expect(PROMPT)
    attrs = termios.tcgetattr(child.child_fd)
    assert not attrs[3] & (termios.ICANON | termios.ECHO | termios.ISIG), (
        "the terminal is not raw while attached"
    )
    child.send("\x1d")
    child.expect("wrapper-rc=0")
    assert finish(child) == 0
    assert before.read_text() == after.read_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_detaches_restores_the_terminal_and_exits_128_plus_n(
    runtime: RunningProcess, env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    script = (
        f"stty -g > {before}; {shlex.join(recorder_command('shell', '--url', runtime.url))}; "
        f"echo wrapper-rc=$?; stty -g > {after}"
    )
    child = pexpect.spawn("bash", ["--norc", "--noprofile", "-c", script], env=env, timeout=EXPECT_TIMEOUT)
    child.expect(PROMPT)
    child.sendline("STATE=survived-$((1+1))")
    child.expect(PROMPT)
    os.kill(child_of(child.pid), sig)
    child.expect(f"received {sig.name}: detached, the shell keeps running; reattach with:")
    child.expect(f"wrapper-rc={128 + sig}")
    text = child.before
    assert finish(child) == 0
    assert before.read_text() == after.read_text()

    again = spawn(env, *reattach_argv(text))
    again.sendline("echo $STATE")
    again.expect("survived-2")
    again.sendline("exit")
    assert finish(again) == 0


def test_a_second_client_kicks_the_first_with_a_message_and_exit_254(
    runtime: RunningProcess, env: dict[str, str]
) -> None:
    ids = ["--session-id", "kick-session", "--shell-id", "kick-shell"]
    first = spawn_shell(env, runtime.url, *ids)
    second = spawn(env, "shell", "--url", runtime.url, *ids)
    second.expect("reattached to shell kick-shell")
    first.expect("kicked: another client attached to this shell")
    assert finish(first) == 254
    assert b"reattach with" not in first.before
    second.sendline("exit")
    assert finish(second) == 0


def test_going_away_prints_the_reattach_command_and_exits_253(home: Path, env: dict[str, str]) -> None:
    with start_runtime(env={"HOME": str(home)}) as rt:
        child = spawn_shell(env, rt.url, "--session-id", "ga-session", "--shell-id", "ga-shell")
        rt.send_signal(signal.SIGTERM)
        child.expect(r"the server is going away \(close 1001")
        child.expect("reattach with:")
        assert finish(child) == 253
        argv = reattach_argv(child.before)
        assert argv == [
            "shell",
            "--url",
            rt.url,
            "--runtime-arn",
            "arn:aws:bedrock-agentcore:us-east-1:000000000000:runtime/local",
            "--session-id",
            "ga-session",
            "--shell-id",
            "ga-shell",
        ]


# ---- window size


def _retry_until(child: pexpect.spawn, line: str, want: bytes, other: bytes, attempts: int = 20) -> None:
    """Type ``line`` until its output shows ``want`` (SIGWINCH and typed keys travel independently)."""
    for _ in range(attempts):
        child.sendline(line)
        if child.expect([re.escape(want), re.escape(other)]) == 0:
            return
    raise AssertionError(f"never saw {want!r}")


def test_sigwinch_sends_the_new_size_and_stty_sees_it(runtime: RunningProcess, env: dict[str, str]) -> None:
    child = spawn_shell(env, runtime.url, rows=24, cols=80)
    child.sendline("stty size")
    child.expect("24 80")
    child.setwinsize(31, 101)
    _retry_until(child, "stty size", b"31 101", b"24 80")
    child.sendline("exit")
    assert finish(child) == 0


def _screen_until(
    child: pexpect.spawn, vt: avt.Vt, done: Callable[[list[str]], bool], what: str
) -> list[str]:
    """Feed the child's output into ``vt`` until ``done(screen lines)``; a safety timeout fails the test."""
    deadline = time.monotonic() + EXPECT_TIMEOUT
    fed = b""
    while not done(lines := [line.text for line in vt.view()]):
        if time.monotonic() > deadline:
            screen = "\n".join(lines)
            raise AssertionError(f"screen never showed {what}:\n{screen}\nlast bytes: {fed[-3000:]!r}")
        try:
            chunk = child.read_nonblocking(65536, timeout=0.2)
        except pexpect.TIMEOUT:
            continue
        fed += chunk
        vt.feed_str(chunk.decode("utf-8", errors="replace"))
    return lines


def _shows_numbers_to(rows: int) -> Callable[[list[str]], bool]:
    # A pager or editor on a file of numbered lines fills all rows but the last with 1..rows-1.
    def done(lines: list[str]) -> bool:
        return (
            len(lines) == rows
            and lines[0].strip() == "1"
            and lines[rows - 2].strip() == str(rows - 1)
            and lines[rows - 1].strip() != str(rows)
        )

    return done


def _wait_until_waiting_for_input(marker: str) -> None:
    """Wait until the process whose command line holds ``marker`` sleeps (blocked reading its terminal).

    less 590 misses a SIGWINCH that lands between flushing its screen and entering read(): the
    redraw then waits for the next key. Resizing only once the program sleeps avoids that race
    (theirs, not the client's); the screen was already complete, so the sleep is the input read.
    """
    needle = marker.encode()
    deadline = time.monotonic() + EXPECT_TIMEOUT
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if needle not in (entry / "cmdline").read_bytes():
                    continue
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state == "S":
                return
        time.sleep(0.05)
    raise AssertionError(f"no sleeping process with {marker!r} in its command line")


@pytest.fixture
def numbers(tmp_path: Path) -> Path:
    path = tmp_path / "numbers.txt"
    path.write_text("".join(f"{i}\n" for i in range(1, 501)))
    return path


@pytest.mark.parametrize("program", ["less", "vim"])
def test_a_full_screen_program_redraws_at_the_new_size(
    runtime: RunningProcess, env: dict[str, str], numbers: Path, program: str
) -> None:
    path = f"/usr/bin/{program}"
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not installed")
    command = f"{path} {numbers}" if program == "less" else f"{path} -u NONE -N -n {numbers}"
    child = spawn_shell(env, runtime.url, rows=24, cols=80)
    vt = avt.Vt(80, 24)
    child.sendline(command)
    _screen_until(child, vt, _shows_numbers_to(24), f"{program} at 24 rows")
    _wait_until_waiting_for_input(str(numbers))
    child.setwinsize(30, 100)
    vt.resize(100, 30)
    lines = _screen_until(child, vt, _shows_numbers_to(30), f"{program} redrawn at 30 rows")
    assert [line.strip() for line in lines[:29]] == [str(i) for i in range(1, 30)]
    child.send("q" if program == "less" else "\x1b:q!\r")
    child.expect(PROMPT)
    child.sendline("exit")
    assert finish(child) == 0


# ---- stdin that is not a terminal


def test_piped_stdin_works_without_a_terminal(runtime: RunningProcess, env: dict[str, str]) -> None:
    proc = subprocess.run(
        recorder_command("shell", "--url", runtime.url),
        input=b"echo piped-$((1+1))\nexit 6\n",
        capture_output=True,
        env=env,
        timeout=30,
    )
    assert proc.returncode == 6
    assert b"piped-2" in proc.stdout
    assert proc.stderr == b""


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        # Arrives before bash's line editor starts: the first Ctrl+D is lost, a repeat ends the shell.
        (b"echo before-eof-$((2+2))\n", b"before-eof-4"),
        # Ctrl+D typed while a command runs that does not read the terminal.
        (b"sleep 1; echo after-sleep-$((2+3))\n", b"after-sleep-5"),
    ],
)
def test_end_of_piped_stdin_types_ctrl_d_until_the_shell_exits(
    runtime: RunningProcess, env: dict[str, str], typed: bytes, shown: bytes
) -> None:
    proc = subprocess.run(
        recorder_command("shell", "--url", runtime.url),
        input=typed,
        capture_output=True,
        env=env,
        timeout=30,
    )
    assert proc.returncode == 0
    assert shown in proc.stdout


# ---- run_shell in-process, on a pty pair (the terminal is injected)


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


class _Screen:
    """What the client wrote to the terminal, read from the pty master."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.data = bytearray()
        self.changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(master, self._read)

    def _read(self) -> None:
        try:
            self.data += os.read(self.master, 65536)
        except OSError:
            asyncio.get_running_loop().remove_reader(self.master)
        self.changed.set()

    async def wait_for(self, needle: bytes | re.Pattern[bytes]) -> None:
        found = needle.search if isinstance(needle, re.Pattern) else lambda data: needle in data
        while not found(bytes(self.data)):
            self.changed.clear()
            await self.changed.wait()

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.master)


def test_run_shell_on_a_pty_pair_detaches_and_restores_the_terminal(
    runtime: RunningProcess, pty_pair: tuple[int, int]
) -> None:
    master, slave = pty_pair
    before = termios.tcgetattr(slave)

    async def main() -> None:
        screen = _Screen(master)
        client = ShellClient(target(runtime.url))
        session = asyncio.ensure_future(
            run_shell(client, TerminalIO(slave, slave, slave), handle_signals=False)
        )
        os.write(master, b"echo in-$((3*3))-process\r")
        await screen.wait_for(b"in-9-process")
        assert not termios.tcgetattr(slave)[3] & termios.ICANON
        os.write(master, b"\x1d")
        ending = await session
        screen.close()
        assert ending.kind is EndKind.DETACHED and ending.signal is None

    run(main())
    assert termios.tcgetattr(slave) == before


def test_a_platform_diagnostic_is_written_to_stderr_on_its_own_line(
    runtime: RunningProcess, pty_pair: tuple[int, int]
) -> None:
    master, slave = pty_pair
    err_read, err_write = os.pipe()

    async def main() -> bytes:
        screen = _Screen(master)
        client = ShellClient(target(runtime.url))
        session = asyncio.ensure_future(
            run_shell(client, TerminalIO(slave, slave, err_write), handle_signals=False)
        )
        await screen.wait_for(PROMPT)
        os.write(master, b"printf no-newline-$((5+5))\r")
        await screen.wait_for(b"no-newline-10")
        # The runtime answers a malformed RESIZE with a STDERR diagnostic.
        await client.send_frame(Frame(Channel.RESIZE, b"not json"))
        os.write(master, b"exit\r")
        ending = await session
        screen.close()
        assert ending.kind is EndKind.EXITED
        os.close(err_write)
        return os.read(err_read, 65536)

    try:
        err = run(main())
    finally:
        os.close(err_read)
    # The cursor was after the prompt, so the diagnostic starts a new line, and ends its own.
    assert err.startswith(b"\r\n") and err.endswith(b"\r\n") and b"RESIZE" in err
    assert err.count(b"\r\n") == err.count(b"\n"), "raw mode needs CR LF line ends"


def test_a_reattach_notes_output_dropped_while_detached(
    home: Path, env: dict[str, str], tmp_path: Path
) -> None:
    go, done = tmp_path / "go", tmp_path / "done"
    with start_runtime("--buffer-size", "1024", env={"HOME": str(home)}) as rt:
        child = spawn_shell(env, rt.url)
        # Waits for GO, so all of its output is produced while nobody is attached. Octal 132 is 'Z'.
        wait_for_go = f"while [ ! -e {go} ]; do sleep 0.05; done"
        child.sendline(f"{wait_for_go}; head -c 100000 /dev/zero | tr '\\0' '\\132'; touch {done}")
        child.send("\x1d")
        assert finish(child) == 0
        argv = reattach_argv(child.before)
        go.touch()
        wait_until(done.exists, EXPECT_TIMEOUT, "the detached shell to write its output")
        again = spawn(env, *argv)
        again.expect(r"recorder: (\d+) bytes of output were dropped while detached")
        assert int(again.match.group(1)) > 0
        again.sendline("exit")
        assert finish(again) == 0


def test_a_terminal_hang_up_detaches_and_the_shell_lives_on(runtime: RunningProcess) -> None:
    master, slave = os.openpty()

    async def main() -> None:
        screen = _Screen(master)
        client = ShellClient(target(runtime.url))
        session = asyncio.ensure_future(
            run_shell(client, TerminalIO(slave, slave, slave), handle_signals=False)
        )
        os.write(master, b"LEFT=behind-$((2*3)); echo typed-$((7*6))\r")
        await screen.wait_for(b"typed-42")
        screen.close()
        os.close(master)  # the terminal window goes away: the slave now reads EIO
        ending = await session
        assert ending.kind is EndKind.DETACHED

        again = ShellClient(target(runtime.url, shell_id=client.shell_id, session_id=client.session_id))
        await again.connect()
        await again.send_input(b"echo $LEFT; exit\r")
        _, out = await collect_until(again)
        assert b"behind-6" in out

    try:
        run(main())
    finally:
        os.close(slave)
