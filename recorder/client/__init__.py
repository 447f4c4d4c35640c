"""The shell client behind ``recorder shell`` (interactive) and ``recorder exec`` (one command)."""

from recorder.client.interactive import DETACH_KEY, TerminalIO, run_shell
from recorder.client.oneshot import run_command
from recorder.client.outcome import (
    EXIT_CONNECT_FAILED,
    EXIT_DISCONNECTED,
    EXIT_EXEC_FAILED,
    EXIT_GOING_AWAY,
    EXIT_KICKED,
    EXIT_PLATFORM,
    describe,
    exit_status,
    reattach_advised,
)
from recorder.client.session import (
    Confirmed,
    Diagnostic,
    Ending,
    EndKind,
    Other,
    Output,
    ShellClient,
    ShellEvent,
    ShellTarget,
    Shutdown,
    Terminated,
)
from recorder.client.terminal import DEFAULT_SIZE, raw_mode, terminal_size

__all__ = [
    "DEFAULT_SIZE",
    "DETACH_KEY",
    "EXIT_CONNECT_FAILED",
    "EXIT_DISCONNECTED",
    "EXIT_EXEC_FAILED",
    "EXIT_GOING_AWAY",
    "EXIT_KICKED",
    "EXIT_PLATFORM",
    "Confirmed",
    "Diagnostic",
    "EndKind",
    "Ending",
    "Other",
    "Output",
    "ShellClient",
    "ShellEvent",
    "ShellTarget",
    "Shutdown",
    "Terminated",
    "TerminalIO",
    "describe",
    "exit_status",
    "raw_mode",
    "reattach_advised",
    "run_command",
    "run_shell",
    "terminal_size",
]
