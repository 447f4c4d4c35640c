"""What an ended connection means to the local process: its exit status and a one-line message.

Exit statuses. The remote shell's own status (0-255, 128+N for signal N) passes through unchanged;
the client's own outcomes use the top of the range, where shells rarely land::

    0    detached on request (Ctrl+]), or the shell exited 0
    N    the remote shell exited N (128+N when signal N killed it)
    128+N  a local signal N (SIGTERM, SIGHUP, SIGINT) made the client leave
    250  recorder exec could not start the command
    251  the platform ended or failed the shell (CLOSE frame, InternalError STATUS)
    252  the connection was lost or closed without an exit status
    253  the server is going away (close 1001); the shell can be reattached
    254  kicked: another client attached to the same shell (close 4000)
    255  the connection could not be opened (refused, HTTP error at the upgrade, TLS, DNS)
"""

from __future__ import annotations

import signal as signals

from recorder.client.session import Ending, EndKind

EXIT_EXEC_FAILED = 250
EXIT_PLATFORM = 251
EXIT_DISCONNECTED = 252
EXIT_GOING_AWAY = 253
EXIT_KICKED = 254
EXIT_CONNECT_FAILED = 255


def exit_status(ending: Ending) -> int:
    """The local exit status for an ended connection."""
    if ending.signal is not None:
        return 128 + ending.signal
    kind = ending.kind
    if kind is EndKind.EXITED:
        term = ending.termination
        if term is None or term.internal_error:
            return EXIT_PLATFORM
        if term.exit_code is not None and 0 <= term.exit_code <= 255:
            return term.exit_code
        if term.signal is not None:
            return 128 + term.signal
        return EXIT_PLATFORM
    if kind in (EndKind.DETACHED, EndKind.ENDED):
        return 0
    if kind is EndKind.KICKED:
        return EXIT_KICKED
    if kind is EndKind.GOING_AWAY:
        return EXIT_GOING_AWAY
    if kind is EndKind.SHUTDOWN:
        return EXIT_PLATFORM
    return EXIT_DISCONNECTED


def describe(ending: Ending) -> str | None:
    """A one-line message for the user, or None when the shell simply exited."""
    if ending.signal == signals.SIGPIPE:
        return None  # the reader of our output left; like any process on a broken pipe, stay quiet
    if ending.signal is not None:
        name = _signal_name(ending.signal)
        if ending.kind is EndKind.DETACHED:
            return f"received {name}: detached, the shell keeps running"
        return f"received {name}: ended the shell"
    kind = ending.kind
    code = f"close {ending.close_code}" + (f" {ending.close_reason}" if ending.close_reason else "")
    if kind is EndKind.EXITED:
        term = ending.termination
        if term is not None and term.internal_error:
            return f"the platform failed the shell: {term.message or 'internal error'}"
        return None
    if kind is EndKind.DETACHED:
        return "detached, the shell keeps running"
    if kind is EndKind.ENDED:
        return "ended the shell"
    if kind is EndKind.KICKED:
        return "kicked: another client attached to this shell"
    if kind is EndKind.GOING_AWAY:
        return f"the server is going away ({code}); the shell keeps running"
    if kind is EndKind.SHUTDOWN:
        return "the platform ended the shell (CLOSE frame)"
    if kind is EndKind.CLOSED:
        return f"the server closed the connection without an exit status ({code})"
    return f"connection lost ({code}); the shell may still be running"


def reattach_advised(ending: Ending) -> bool:
    """True when the user should be shown how to reattach (not after a kick: that must not loop)."""
    return ending.kind in (EndKind.DETACHED, EndKind.GOING_AWAY, EndKind.DISCONNECTED)


def _signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"
