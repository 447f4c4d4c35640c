"""recorder exec: run one command in a fresh shell, with the command's exact output and exit status.

The runtime only offers an interactive shell on a PTY, so exec has to drive that shell without
leaving traces of it in the output. Typing the command at the prompt would expose it to the line
editor (Tab completes, history expansion, the 4 KiB canonical-mode line limit, echo). Instead exec
types one short fixed line, and sends the command itself as data once the terminal is in raw mode:

1. connect with a fresh shellId and wait for the confirmation (a reconnect means the shellId named
   an existing shell: exec refuses, and detaches without typing anything);
2. send a RESIZE, then type::

       stty raw -echo 2>/dev/null; printf '%s%s' recorder-exec- TOKEN;
       c=$(head -c N) && exec sh -c "$c" </dev/null; exit 127

   (one line, with a leading space). ``stty raw -echo`` stops echo and every input and output
   translation (no CR/LF mapping, no signal keys), so bytes pass through the PTY unchanged. The
   marker is printed in two pieces so the echoed line never contains it; TOKEN is random per run;
3. discard everything up to the marker (prompt, echo of the line, bracketed-paste switches), then
   send exactly N bytes of command text, which ``head -c N`` reads from the raw terminal;
4. ``exec sh -c`` replaces the shell, so nothing follows the command's output, and the shell's
   exit status is the command's (a signal N shows up as 128+N). ``exit 127`` covers a failed exec.

The command is one shell command line for ``sh -c`` (arguments are joined with spaces, as ssh
does). Its stdin is /dev/null unless stdin data is given: then it is sent after the command and read
by ``head -c M`` into a pipe, so the command sees exactly those bytes and then end of file. Its
stderr shares the PTY with stdout, so both arrive on the local stdout. The remote needs ``sh``,
``stty`` and ``head``, which every Linux userland has.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import signal
from collections.abc import Coroutine
from enum import Enum
from typing import Any

from recorder.client.session import (
    Confirmed,
    Diagnostic,
    Ending,
    Output,
    ShellClient,
    ShellEvent,
    Terminated,
)
from recorder.client.terminal import DEFAULT_SIZE, write_all
from recorder.errors import (
    ConfigError,
    ExecError,
    ExecInputTooLarge,
    ExecStartTimeout,
    PreambleTooLarge,
    SessionClosed,
    ShellInUse,
)
from recorder.logfmt import get_logger
from recorder.protocol import Resize

log = get_logger(__name__)

#: The fixed half of the start marker; a random token follows it.
MARKER_PREFIX = "recorder-exec-"
#: Largest command text exec sends (it becomes one argument of ``sh -c``; ARG_MAX is far above).
MAX_COMMAND_SIZE = 128 * 1024
#: Largest stdin payload exec forwards; it is read whole before the command starts.
MAX_STDIN_SIZE = 16 * 1024 * 1024
#: Most shell output accepted before the start marker (prompt, echo, login banners).
MAX_PREAMBLE = 256 * 1024
#: Seconds from the upgrade until the command has started.
DEFAULT_START_TIMEOUT = 30.0
#: Local signals that end the remote command and make exec exit 128+N.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def encode_command(command: str, limit: int = MAX_COMMAND_SIZE) -> bytes:
    """The command as UTF-8 bytes, checked: not blank, no NUL byte, at most ``limit`` bytes."""
    data = command.encode("utf-8", errors="surrogateescape")
    if not data.strip():
        raise ConfigError("no command given: recorder exec [OPTIONS] -- COMMAND...")
    if b"\0" in data:
        raise ConfigError("the command contains a NUL byte")
    if len(data) > limit:
        raise ExecInputTooLarge("command", len(data), limit)
    return data


def start_line(token: str, command_size: int, stdin_size: int | None = None) -> bytes:
    """The line typed into the fresh shell (see the module docstring)."""
    if stdin_size is None:
        run = 'exec sh -c "$c" </dev/null'
    else:
        run = f'exec sh -c \'head -c "$1" | sh -c "$2"\' sh {stdin_size} "$c"'
    return (
        # The leading space keeps the line out of the history where HISTCONTROL ignores spaces.
        f" stty raw -echo 2>/dev/null; printf '%s%s' {MARKER_PREFIX} {token}; "
        f"c=$(head -c {command_size}) && {run}; exit 127\n"
    ).encode()


class _Phase(Enum):
    CONFIRMING = "confirming"
    STARTING = "starting"
    RUNNING = "running"


async def run_command(
    client: ShellClient,
    command: str,
    *,
    stdout_fd: int = 1,
    stderr_fd: int = 2,
    stdin_data: bytes | None = None,
    size: Resize = DEFAULT_SIZE,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    max_preamble: int = MAX_PREAMBLE,
    max_command_size: int = MAX_COMMAND_SIZE,
    max_stdin_size: int = MAX_STDIN_SIZE,
    handle_signals: bool = True,
) -> Ending:
    """Run ``command`` in the fresh shell ``client`` names; its output goes to ``stdout_fd`` exactly."""
    script = encode_command(command, max_command_size)
    if stdin_data is not None and len(stdin_data) > max_stdin_size:
        raise ExecInputTooLarge("stdin", len(stdin_data), max_stdin_size)
    if not client.connected:
        await client.connect()
    run = _Exec(client, script, stdin_data, stdout_fd, stderr_fd, max_preamble)
    return await run.run(size, start_timeout, handle_signals)


class _Exec:
    def __init__(
        self,
        client: ShellClient,
        script: bytes,
        stdin_data: bytes | None,
        stdout_fd: int,
        stderr_fd: int,
        max_preamble: int,
    ) -> None:
        self.client = client
        self.script = script
        self.stdin_data = stdin_data
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.max_preamble = max_preamble
        self.token = secrets.token_hex(16)
        self.marker = f"{MARKER_PREFIX}{self.token}".encode()
        self.phase = _Phase.CONFIRMING
        self.preamble = bytearray()
        self.stop_signal: int | None = None
        self.background: set[asyncio.Task[Any]] = set()

    async def run(self, size: Resize, start_timeout: float, handle_signals: bool) -> Ending:
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        if handle_signals:
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, self._on_stop_signal, sig)
                installed.append(sig)
        try:
            await self.client.resize(size)
            async with asyncio.timeout(start_timeout) as deadline:
                async for event in self.client.events():
                    await self._handle(event)
                    if self.phase is _Phase.RUNNING:
                        deadline.reschedule(None)
        except TimeoutError:
            await self.client.close(graceful=True)
            what = "no confirmation from the server" if self.phase is _Phase.CONFIRMING else "no start marker"
            raise ExecStartTimeout(f"the command did not start within {start_timeout} s ({what})") from None
        except SessionClosed:
            pass  # the connection ended while sending; the Ending below says how
        except BaseException:
            # Never leave a half-started command behind: end the fresh shell.
            await self.client.close(graceful=True)
            raise
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            for task in list(self.background):
                task.cancel()
            await asyncio.gather(*self.background, return_exceptions=True)
        ending = self.client.ending
        assert ending is not None
        if self.stop_signal is not None:
            ending = dataclasses.replace(ending, signal=self.stop_signal)
        return ending

    async def _handle(self, event: ShellEvent) -> None:
        if isinstance(event, Output):
            if self.phase is _Phase.RUNNING:
                self._write_out(event.data)
            else:
                self._preamble(event.data)
        elif isinstance(event, Confirmed):
            if self.phase is _Phase.CONFIRMING:
                if event.status.reconnected:
                    await self.client.detach()
                    raise ShellInUse(
                        f"shell {event.status.shell_id} already exists; exec runs in a new shell, "
                        "so leave out --shell-id or give an unused one"
                    )
                self.phase = _Phase.STARTING
                await self.client.send_input(start_line(self.token, len(self.script), self._stdin_size()))
        elif isinstance(event, Diagnostic):
            self._write_err(event.text.rstrip("\n").encode("utf-8", errors="replace") + b"\n")
        elif isinstance(event, Terminated) and self.phase is not _Phase.RUNNING:
            tail = bytes(self.preamble[-200:]).decode("utf-8", errors="replace")
            status = event.status
            code = status.message or f"exit code {status.exit_code}"
            raise ExecError(f"the shell ended before the command started ({code}); its last output: {tail!r}")

    def _stdin_size(self) -> int | None:
        return None if self.stdin_data is None else len(self.stdin_data)

    def _preamble(self, data: bytes) -> None:
        # Only what follows the start line can hold the marker; a marker split across two frames is
        # found because the search restarts just far enough back.
        search_from = max(0, len(self.preamble) - len(self.marker) + 1)
        self.preamble += data
        at = self.preamble.find(self.marker, search_from) if self.phase is _Phase.STARTING else -1
        if at < 0:
            if len(self.preamble) > self.max_preamble:
                raise PreambleTooLarge(self.max_preamble)
            return
        rest = bytes(self.preamble[at + len(self.marker) :])
        self.preamble.clear()
        self.phase = _Phase.RUNNING
        log.info("exec.started", shell_id=self.client.shell_id)
        self._spawn(self._send_command())
        if rest:
            self._write_out(rest)

    async def _send_command(self) -> None:
        try:
            await self.client.send_input(self.script)
            if self.stdin_data:
                await self.client.send_input(self.stdin_data)
        except SessionClosed:
            return

    def _write_out(self, data: bytes) -> None:
        try:
            write_all(self.stdout_fd, data)
        except BrokenPipeError:
            # The reader went away (``| head``): stop the command, as a pipe would with SIGPIPE.
            if self.stop_signal is None:
                self.stop_signal = signal.SIGPIPE
                self._spawn(self.client.close(graceful=True))

    def _write_err(self, data: bytes) -> None:
        try:
            write_all(self.stderr_fd, data)
        except OSError:
            pass

    def _on_stop_signal(self, sig: int) -> None:
        log.info("exec.signal", signal=sig)
        if self.stop_signal is None:
            self.stop_signal = sig
            self._spawn(self.client.close(graceful=True))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
