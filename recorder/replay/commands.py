"""Commands typed in a recording: what the screen showed when Enter was accepted, not the raw keys.

Reading the screen instead of the keystrokes gets line editing, history recall and tab completion
right for free. Two ways to find the command on the screen:

- With OSC 133 marks (``A`` prompt start, ``B`` prompt end, ``C`` pre-execution, ``D;<status>``
  command end), the command is the screen text from the cursor position at ``B`` to the cursor
  position at ``C`` (readline has echoed the final line and the newline by then), and the exit
  status comes from the next ``D``. Keys sent between ``C`` and ``D`` go to the running program
  and are not commands. Once a mark is seen, the rest of the recording is read this way.
- Without marks (heuristic): when typing starts, the text left of the cursor is the prompt; it
  counts as a shell prompt only if it ends with one of :data:`PROMPT_ENDINGS`. When Enter is sent,
  the command is read from the line the cursor is on just before the next line feed in the output
  (the shell's echo of Enter), minus the prompt. The exit code is unknown (None) and a command
  ends with the last output before typing starts again.

Either way, keys sent while the alternate screen is active (vim, less, top) are not commands.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from recorder.cast.model import Event, Header
from recorder.replay.driver import Observer, run
from recorder.replay.marks import Mark, MarkKind
from recorder.replay.screen import Screen

#: A captured prompt counts as a shell prompt only if it ends with one of these.
PROMPT_ENDINGS = ("$ ", "# ", "> ", "% ")
#: How many output lines an output preview keeps.
PREVIEW_LINES = 5
#: How many characters an output preview keeps.
PREVIEW_CHARS = 500
#: Without marks: how many output lines a typed-ahead Enter waits for its echo before it is dropped.
ECHO_WAIT_LINES = 200


@dataclass(frozen=True, slots=True)
class Command:
    """One command: when Enter was sent (seconds), its text, exit code, first output lines, end time."""

    offset: float
    text: str
    exit_code: int | None
    output_preview: str
    end_offset: float | None


@dataclass(slots=True)
class _Open:
    offset: float
    text: str
    echo: str
    prompt: str
    preview: list[str] = field(default_factory=list)
    exit_code: int | None = None
    end_offset: float | None = None

    def preview_full(self) -> bool:
        return len(self.preview) >= PREVIEW_LINES

    def to_command(self) -> Command:
        preview = "\n".join(self.preview).rstrip("\n")[:PREVIEW_CHARS]
        return Command(self.offset, self.text, self.exit_code, preview, self.end_offset)


@dataclass(slots=True)
class _Pending:
    offset: float
    prompt: str
    budget: int
    waiting: bool = False


def _is_prompt(text: str) -> bool:
    return text.endswith(PROMPT_ENDINGS)


def _strip_prompt(line: str, prompt: str) -> str | None:
    """The command part of ``line`` given the prompt captured before typing, or None."""
    if prompt and line.startswith(prompt):
        return line[len(prompt) :].strip()
    # The prompt was redrawn differently (e.g. after reverse search): cut at its ending.
    ending = prompt[-2:] if prompt else ""
    if ending:
        i = line.find(ending)
        if i >= 0:
            return line[i + len(ending) :].strip()
    return None


def _enters(data: str) -> list[int]:
    """Indexes of Enter keys in input data (CR, LF; CR LF counts once)."""
    out: list[int] = []
    prev = ""
    for i, ch in enumerate(data):
        if ch == "\r" or (ch == "\n" and prev != "\r"):
            out.append(i)
        prev = ch
    return out


class CommandTracker(Observer):
    """Observer that turns a stream into :class:`Command` values (see the module docstring)."""

    def __init__(self) -> None:
        self.marks_mode = False
        self._done: list[Command] = []
        self._open: _Open | None = None
        self._last_output = 0.0
        # marks mode
        self._b: tuple[int, int, int] | None = None
        self._editing = False
        self._running = False
        self._enters: deque[float] = deque()
        # heuristic mode
        self._typing = False
        self._prompt = ""
        self._pending: deque[_Pending] = deque()
        #: Texts of shell lines (prompt + command, bare prompts) seen, for transcripts to skip.
        self.shell_lines: set[str] = set()

    def take(self) -> list[Command]:
        """Commands completed since the last call, in order."""
        done, self._done = self._done, []
        return done

    @property
    def open_offset(self) -> float | None:
        """Offset of the command still in progress, if any."""
        return self._open.offset if self._open is not None else None

    # -- shared ---------------------------------------------------------------------------------

    def _close(self, end: float | None) -> None:
        cmd = self._open
        if cmd is None:
            return
        if cmd.end_offset is None:
            cmd.end_offset = end
        self._done.append(cmd.to_command())
        self._open = None

    def _start(self, offset: float, text: str, echo: str, prompt: str, time: float) -> None:
        self._close(time)
        self._open = _Open(offset, text, echo, prompt)
        self.shell_lines.add(echo)

    def wants_line_feeds(self) -> bool:
        """LFs matter while an echo is awaited or a preview is being filled."""
        if self._pending:
            return True
        return self._open is not None and not self._open.preview_full() and self._open.end_offset is None

    def on_line_feed(self, screen: Screen, time: float) -> None:
        """Resolve an awaited echo, or add the finished line to the open command's preview."""
        if screen.alternate:
            return
        row = screen.scrolled + min(screen.cursor.row, screen.rows - 1)
        found = screen.logical_line_at(row)
        line = found[1] if found is not None else ""
        if self._pending and not self.marks_mode:
            p = self._pending[0]
            if p.waiting:
                # A typed-ahead Enter: its echo comes after the previous command's output,
                # on a line that starts with the prompt.
                text = line[len(p.prompt) :].strip() if line.startswith(p.prompt) else None
                p.budget -= 1
                if text is not None or p.budget <= 0:
                    self._pending.popleft()
            else:
                # The first LF after Enter is the shell's echo of it.
                self._pending.popleft()
                text = _strip_prompt(line, p.prompt) if _is_prompt(p.prompt) else None
            if self._pending:
                self._pending[0].waiting = True
            if text is not None:
                if text:
                    self._start(p.offset, text, line, p.prompt, time)
                else:
                    self.shell_lines.add(line)
                return
        cmd = self._open
        if cmd is not None and cmd.end_offset is None and not cmd.preview_full():
            cmd.preview.append(line)

    def on_output(self, screen: Screen, time: float) -> None:
        """Remember when output last arrived (the heuristic end of a command)."""
        self._last_output = time

    # -- input ----------------------------------------------------------------------------------

    def on_input(self, screen: Screen, event: Event) -> None:
        """Keys: note Enter presses at a prompt (never inside full-screen programs)."""
        if screen.alternate:
            return
        data = event.data
        # Most input events are single keys: no Enter in them, nothing to find.
        has_enter = "\r" in data or "\n" in data
        if self.marks_mode:
            if has_enter and not self._running:
                self._enters.extend(event.time for _ in _enters(data))
            return
        enters = _enters(data) if has_enter else []
        if not self._typing:
            self._begin_typing(screen)
        for _ in enters:
            self._pending.append(_Pending(event.time, self._prompt, ECHO_WAIT_LINES))
        if enters and enters[-1] == len(data) - 1:
            self._typing = False

    def needs_screen_at(self, screen: Screen, event: Event) -> bool:
        """Only the first key at a prompt without marks reads the screen (the prompt left of the cursor)."""
        return not self.marks_mode and not self._typing and not screen.alternate

    def _begin_typing(self, screen: Screen) -> None:
        if not self._pending:
            self._prompt = screen.text_before_cursor()
        self._typing = True
        if _is_prompt(self._prompt):
            self.shell_lines.add(self._prompt.rstrip())
            # A new prompt means the previous command has finished.
            self._close(self._last_output)

    # -- marks ----------------------------------------------------------------------------------

    def on_mark(self, screen: Screen, mark: Mark, time: float) -> None:
        """OSC 133 marks give exact boundaries and exit codes."""
        kind = mark.kind
        if kind not in (
            MarkKind.PROMPT_START,
            MarkKind.COMMAND_START,
            MarkKind.COMMAND_EXECUTED,
            MarkKind.COMMAND_FINISHED,
        ):
            return
        if not self.marks_mode:
            self.marks_mode = True
            self._pending.clear()
            self._typing = False
        if kind is MarkKind.PROMPT_START or kind is MarkKind.COMMAND_FINISHED:
            if self._editing and self._enters:
                self._enters.popleft()  # Enter on an empty line: no command ran
            self._editing = False
            if self._open is not None and self._running:
                if kind is MarkKind.COMMAND_FINISHED:
                    self._open.exit_code = mark.status
                self._last_partial_line(screen)
                self._close(time)
            self._running = False
        elif kind is MarkKind.COMMAND_START:
            if self._running:
                self._close(time)
                self._running = False
            c = screen.cursor
            self._b = (screen.scrolled + c.row, c.col, screen.layout)
            self._editing = True
            self.shell_lines.add(screen.text_before_cursor().rstrip())
        elif kind is MarkKind.COMMAND_EXECUTED and not screen.alternate:
            self._executed(screen, time)

    def _last_partial_line(self, screen: Screen) -> None:
        """Output that ended without a newline is still part of the preview."""
        cmd = self._open
        if cmd is None or cmd.preview_full() or screen.alternate or screen.cursor.col == 0:
            return
        found = screen.logical_line_at(screen.scrolled + min(screen.cursor.row, screen.rows - 1))
        if found is not None and found[1]:
            cmd.preview.append(found[1])

    def _executed(self, screen: Screen, time: float) -> None:
        c = screen.cursor
        end_row = screen.scrolled + min(c.row, screen.rows - 1)
        end_col = min(c.col, screen.cols)
        text: str | None = None
        echo = ""
        prompt = ""
        if self._b is not None and self._b[2] == screen.layout:
            b_row, b_col, _ = self._b
            if end_col == 0 and end_row > b_row:
                end_row, end_col = end_row - 1, screen.cols
            text = screen.text_between(b_row, b_col, end_row, end_col)
            found = screen.logical_line_at(b_row)
            if found is not None:
                echo = found[1]
                prompt = echo[:b_col]
        if text is None:
            # No usable B position: take the line above the cursor and cut at a prompt ending.
            found = screen.logical_line_at(end_row - 1 if end_col == 0 else end_row)
            if found is not None:
                echo = found[1]
                ends = [i + 2 for i in (echo.find(e) for e in PROMPT_ENDINGS) if i >= 0]
                text = echo[min(ends) :] if ends else echo
        offset = self._enters.popleft() if self._enters else time
        self._b = None
        self._editing = False
        text = (text or "").strip()
        if text:
            self._start(offset, text, echo, prompt, time)
            self._running = True

    def finish(self, screen: Screen, time: float) -> None:
        """Close what is still open; an Enter whose echo never came is read from the cursor line."""
        if self._pending and not self.marks_mode and not screen.alternate:
            p = self._pending.popleft()
            line = screen.cursor_line_text()
            text = _strip_prompt(line, p.prompt) if _is_prompt(p.prompt) else None
            if text:
                self._start(p.offset, text, line, p.prompt, time)
        self._pending.clear()
        if self._open is not None:
            self._close(None if self.marks_mode else self._last_output)


def iter_commands(header: Header, events: Iterable[Event]) -> Iterator[Command]:
    """Yield commands as they complete, in one pass over the events."""
    screen = Screen(header.width, header.height)
    tracker = CommandTracker()
    for _ in run(screen, events, [tracker]):
        yield from tracker.take()


def extract_commands(header: Header, events: Iterable[Event]) -> list[Command]:
    """Every command typed in a recording, with offset, exit code, output preview and end."""
    return list(iter_commands(header, events))
