"""The embedded bash's startup file: OSC 133 prompt marks, the user's ~/.bashrc, an unchanged screen."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from recorder.runtime import bashrc_path, default_shell
from recorder.runtime.ptyproc import PtyProcess
from tests.runtime.wire import PtyOutput, run

MARK = re.compile(rb"\x1b\]133;[^\x07]*\x07")
USER_PROMPT = b"user-prompt> "


def _env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color", "HOME": str(home)}


async def _session(argv: list[str], home: Path, lines: list[bytes], prompt: bytes = USER_PROMPT) -> bytes:
    """Type ``lines`` into bash one prompt at a time, then exit; return everything it printed."""
    proc = PtyProcess.spawn(argv, env=_env(home))
    out = PtyOutput()
    proc.start_reading(out.feed, out.end)
    await out.wait_count(prompt, 1)
    for n, line in enumerate(lines, start=2):
        await proc.write(line + b"\r")
        await out.wait_count(prompt, n)
    await proc.write(b"exit\r")
    await proc.wait()
    await out.eof.wait()
    proc.close()
    return bytes(out.data)


@pytest.fixture
def user_home(tmp_path: Path) -> Path:
    """A HOME whose ~/.bashrc sets its own prompt, prompt command and alias."""
    (tmp_path / ".bashrc").write_text(
        "PS1='user-prompt> '\nPROMPT_COMMAND='echo -n \"[last=$?]\"'\nalias hello='echo hello-from-alias'\n"
    )
    return tmp_path


def test_the_startup_file_ships_with_the_package() -> None:
    assert bashrc_path().is_file()
    assert default_shell()[:4] == ["bash", "--noprofile", "--rcfile", str(bashrc_path())]


def test_commands_are_framed_by_a_b_c_d_marks(tmp_path: Path) -> None:
    (tmp_path / ".bashrc").write_text("PS1='user-prompt> '\n")
    out = run(_session(default_shell(), tmp_path, [b"echo out-$((1+1))", b"(exit 7)"]))
    marks = [m.group() for m in MARK.finditer(out)]
    a, b, c = b"\x1b]133;A\x07", b"\x1b]133;B\x07", b"\x1b]133;C\x07"
    assert marks[:9] == [a, b, c, b"\x1b]133;D;0\x07", a, b, c, b"\x1b]133;D;7\x07", a]
    # The prompt sits between A and B; the command's output between C and D.
    assert re.search(rb"\x1b\]133;A\x07user-prompt> \x1b\]133;B\x07", out)
    assert re.search(rb"\x1b\]133;C\x07out-2\r\n\x1b\]133;D;0\x07", out)


def test_an_empty_line_gets_a_new_prompt_but_no_command_marks(tmp_path: Path) -> None:
    (tmp_path / ".bashrc").write_text("PS1='user-prompt> '\n")
    out = run(_session(default_shell(), tmp_path, [b"", b"true"]))
    marks = [m.group() for m in MARK.finditer(out)]
    assert marks.count(b"\x1b]133;C\x07") == 2  # `true` and `exit`, not the empty line
    assert marks.count(b"\x1b]133;D;0\x07") == 1
    assert marks.count(b"\x1b]133;A\x07") == 3


def test_the_users_bashrc_still_shapes_the_shell(user_home: Path) -> None:
    out = run(_session(default_shell(), user_home, [b"hello", b"false"]))
    assert b"hello-from-alias" in out
    # The user's PROMPT_COMMAND runs, and still sees the exit status of the user's command.
    assert b"[last=1]" in out
    assert b"\x1b]133;D;1\x07[last=1]" in out


def test_a_prompt_command_array_keeps_its_order(tmp_path: Path) -> None:
    (tmp_path / ".bashrc").write_text(
        "PS1='user-prompt> '\nPROMPT_COMMAND=('echo -n \"[one:$?]\"' 'echo -n \"[two]\"')\n"
    )
    out = run(_session(default_shell(), tmp_path, [b"false"]))
    assert b"\x1b]133;D;1\x07[one:1][two]" in out


def test_a_prompt_rewritten_by_the_user_every_time_is_still_marked(tmp_path: Path) -> None:
    (tmp_path / ".bashrc").write_text("PROMPT_COMMAND='PS1=\"user-prompt> \"'\n")
    out = run(_session(default_shell(), tmp_path, [b"true", b"true"]))
    assert out.count(b"\x1b]133;A\x07user-prompt> \x1b]133;B\x07") == 3


def test_without_the_marks_the_screen_is_what_plain_bash_shows(user_home: Path) -> None:
    lines = [b"hello", b"echo $((6*7))", b"", b"false", b"printf 'a\\tb\\n'"]
    marked = run(_session(default_shell(), user_home, lines))
    plain = run(
        _session(["bash", "--noprofile", "--rcfile", str(user_home / ".bashrc"), "-i"], user_home, lines)
    )
    assert MARK.search(marked)
    assert MARK.sub(b"", marked) == plain
