"""Exit statuses and messages for each way a connection can end."""

from __future__ import annotations

import signal

import pytest

from recorder.client import Ending, EndKind, describe, exit_status, reattach_advised
from recorder.client.outcome import (
    EXIT_DISCONNECTED,
    EXIT_GOING_AWAY,
    EXIT_KICKED,
    EXIT_PLATFORM,
)
from recorder.protocol import Termination


@pytest.mark.parametrize(
    ("termination", "status"),
    [
        (Termination(exit_code=0), 0),
        (Termination(exit_code=3), 3),
        (Termination(exit_code=137, signal=9), 137),
        (Termination(exit_code=None, signal=15), 143),
        (Termination(exit_code=None, internal_error=True, message="disk full"), EXIT_PLATFORM),
        (Termination(exit_code=300), EXIT_PLATFORM),
        (Termination(exit_code=None), EXIT_PLATFORM),
    ],
)
def test_an_exited_shell_gives_its_own_status(termination: Termination, status: int) -> None:
    assert exit_status(Ending(EndKind.EXITED, termination=termination, close_code=1000)) == status


@pytest.mark.parametrize(
    ("kind", "status", "reattach"),
    [
        (EndKind.DETACHED, 0, True),
        (EndKind.ENDED, 0, False),
        (EndKind.KICKED, EXIT_KICKED, False),
        (EndKind.GOING_AWAY, EXIT_GOING_AWAY, True),
        (EndKind.SHUTDOWN, EXIT_PLATFORM, False),
        (EndKind.CLOSED, EXIT_DISCONNECTED, False),
        (EndKind.DISCONNECTED, EXIT_DISCONNECTED, True),
    ],
)
def test_each_ending_has_a_distinct_status_and_says_whether_to_reattach(
    kind: EndKind, status: int, reattach: bool
) -> None:
    ending = Ending(kind, close_code=1006)
    assert exit_status(ending) == status
    assert reattach_advised(ending) is reattach
    assert describe(ending)


def test_a_local_signal_gives_128_plus_n_whatever_the_ending() -> None:
    ending = Ending(EndKind.DETACHED, close_code=1000, signal=signal.SIGTERM)
    assert exit_status(ending) == 143
    assert describe(ending) == "received SIGTERM: detached, the shell keeps running"
    ended = Ending(EndKind.ENDED, close_code=1000, signal=signal.SIGINT)
    assert (exit_status(ended), describe(ended)) == (130, "received SIGINT: ended the shell")


def test_a_broken_pipe_is_quiet() -> None:
    ending = Ending(EndKind.ENDED, close_code=1000, signal=signal.SIGPIPE)
    assert exit_status(ending) == 141 and describe(ending) is None


def test_messages_name_the_close_code_and_the_platform_error() -> None:
    assert (
        describe(Ending(EndKind.KICKED, close_code=4000)) == "kicked: another client attached to this shell"
    )
    assert describe(Ending(EndKind.GOING_AWAY, close_code=1001, close_reason="restart")) == (
        "the server is going away (close 1001 restart); the shell keeps running"
    )
    failed = Termination(exit_code=None, internal_error=True, message="runtime crashed")
    assert (
        describe(Ending(EndKind.EXITED, termination=failed))
        == "the platform failed the shell: runtime crashed"
    )
    assert describe(Ending(EndKind.EXITED, termination=Termination(exit_code=2))) is None
