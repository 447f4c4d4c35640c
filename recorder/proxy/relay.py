"""The relay: two pumps that forward every message unchanged and in order, and tap it on the way."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from recorder.index.models import EndReason
from recorder.logfmt import get_logger
from recorder.protocol import Channel, CloseCode
from recorder.proxy.tap import C2U, U2C, Direction, RecordingFailed, RecordingTap

log = get_logger(__name__)

#: How long a closing handshake may take on either side before the TCP connection is dropped.
CLOSE_TIMEOUT = 3.0
# Close codes that exist only locally and may never be sent on the wire.
_UNSENDABLE = {1005, 1006, 1015}


@dataclass(slots=True)
class Outcome:
    """How the relay ended."""

    reason: EndReason
    close_code: int | None
    close_reason: str
    #: The side that closed first; None when the proxy ended the relay itself.
    source: Direction | None = None
    #: True when that side sent a close frame of its own, whose code and reason go to the other side.
    forward: bool = False


def _sendable(code: int | None, default: int) -> int:
    if code is None or code in _UNSENDABLE or not (1000 <= code <= 4999):
        return default
    return code


class Relay:
    """One client connection relayed to one upstream connection, with its recording tap."""

    def __init__(self, client: Connection, upstream: Connection, tap: RecordingTap) -> None:
        self.client = client
        self.upstream = upstream
        self.tap = tap
        self._ending: Outcome | None = None
        self._done = asyncio.Event()
        self.termination_seen = False

    async def run(self) -> Outcome:
        """Relay until either side ends, then close the other side the same way."""
        pumps = [
            asyncio.create_task(self._pump(self.client, self.upstream, C2U), name="relay-c2u"),
            asyncio.create_task(self._pump(self.upstream, self.client, U2C), name="relay-u2c"),
        ]
        ending = asyncio.create_task(self._done.wait())
        try:
            await asyncio.wait([*pumps, ending], return_when=asyncio.FIRST_COMPLETED)
            outcome = self._ending
            if outcome is None:
                # A pump returned without deciding (should not happen): treat as an error.
                outcome = Outcome(EndReason.ERROR, CloseCode.INTERNAL_ERROR, "relay stopped")
            await self._close_both(outcome)
            return outcome
        finally:
            for task in (*pumps, ending):
                task.cancel()
            await asyncio.gather(*pumps, ending, return_exceptions=True)

    def end(self, outcome: Outcome) -> None:
        """Ask the relay to stop (shutdown, recording failure); the first reason given wins."""
        if self._ending is None:
            self._ending = outcome
        self._done.set()

    async def _pump(self, src: Connection, dst: Connection, direction: Direction) -> None:
        tap_put = self.tap.put
        recv = src.recv
        send = dst.send
        while True:
            try:
                message = await recv()
            except ConnectionClosed as exc:
                self.end(self._source_closed(direction, exc.rcvd, exc.sent))
                return
            at = time.monotonic()
            if direction is U2C and is_termination_frame(message):
                self.termination_seen = True
            try:
                await tap_put(direction, message, at)
            except RecordingFailed:
                return  # the tap's failure callback has already ended the relay
            try:
                await send(message)
            except ConnectionClosed:
                # The other side is gone; its own pump sees why.
                await self._done.wait()
                return

    def _source_closed(self, direction: Direction, rcvd: Close | None, sent: Close | None) -> Outcome:
        # A peer's own close frame is forwarded; a close our side started (a protocol violation
        # such as an oversized message) or a drop without any close frame is not.
        forward = rcvd is not None and (sent is None or sent.code == rcvd.code)
        close = rcvd if rcvd is not None else sent
        code = close.code if close is not None else None
        reason = close.reason if close is not None else ""
        if self.termination_seen:
            # The shell ended; whichever side closes first after that, the connection ended by exit.
            return Outcome(EndReason.EXIT, code, reason, direction, forward)
        if direction is C2U:
            if close is None:
                return Outcome(EndReason.CLIENT_DROPPED, None, "", direction)
            return Outcome(EndReason.CLIENT_CLOSED, code, reason, direction, forward)
        if code == CloseCode.KICKED:
            return Outcome(EndReason.KICKED, code, reason, direction, forward)
        return Outcome(EndReason.UPSTREAM_CLOSED, code, reason, direction, forward)

    async def _close_both(self, outcome: Outcome) -> None:
        if outcome.source is C2U:
            if outcome.forward:
                code = _sendable(outcome.close_code, CloseCode.NORMAL)
                await self._close(self.upstream, code, outcome.close_reason)
            else:
                # No close of the client's own: no CLOSE upstream either, the shell stays detached.
                await self._close(self.upstream, CloseCode.GOING_AWAY, "client connection lost")
            return
        if outcome.source is U2C:
            if outcome.forward:
                code = _sendable(outcome.close_code, CloseCode.INTERNAL_ERROR)
                await self._close(self.client, code, outcome.close_reason)
            else:
                await self._close(self.client, CloseCode.INTERNAL_ERROR, "upstream connection lost")
            return
        # Proxy-initiated: shutdown, recording failure, error. The upstream shell stays detached.
        code = _sendable(outcome.close_code, CloseCode.INTERNAL_ERROR)
        await asyncio.gather(
            self._close(self.client, code, outcome.close_reason),
            self._close(self.upstream, CloseCode.GOING_AWAY, "proxy closed the connection"),
        )

    @staticmethod
    async def _close(ws: Connection, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(ws.close(code, reason[:120]), CLOSE_TIMEOUT)
        except (TimeoutError, ConnectionClosed, OSError):
            ws.transport.abort()


def is_termination_frame(message: bytes | str) -> bool:
    """True for a STATUS frame whose metadata carries no shellId (the shell ended)."""
    if isinstance(message, str) or not message or message[0] != Channel.STATUS:
        return False
    # Cheap test on the relay path; the tap parses the payload properly off the path.
    return b'"shellId"' not in message
