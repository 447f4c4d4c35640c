"""The relay: two pumps that forward every message unchanged and in order, and tap it on the way."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import OPEN

from recorder.index.models import EndReason
from recorder.logfmt import get_logger
from recorder.protocol import Channel, CloseCode
from recorder.proxy.hop import Hop, Sink
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
        #: Messages relayed by the fast hop, client to upstream and back (the rest went through
        #: recv and send).
        self.hopped = [0, 0]

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
            self._detach()
            for task in (*pumps, ending):
                task.cancel()
            await asyncio.gather(*pumps, ending, return_exceptions=True)

    def end(self, outcome: Outcome) -> None:
        """Ask the relay to stop (shutdown, recording failure); the first reason given wins."""
        if self._ending is None:
            self._ending = outcome
        # Nothing is relayed once the relay is ending: frames still coming wait in the queues.
        self._detach()
        self._done.set()

    def _detach(self) -> None:
        for ws in (self.client, self.upstream):
            if isinstance(ws, Hop):
                ws.sink = None

    async def _pump(self, src: Connection, dst: Connection, direction: Direction) -> None:
        tap_put = self.tap.put
        recv = src.recv
        send = dst.send
        hopping = src if isinstance(src, Hop) else None
        hop = self._hop(hopping, dst, direction) if hopping is not None else None
        while True:
            if hopping is not None and self._ending is None and not hopping.recv_messages.frames:
                # Nothing waits in the queue: later messages can go through the fast hop, and
                # recv() below returns only what the hop declines (or raises when src closes).
                hopping.sink = hop
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

    def _hop(self, src: Hop, dst: Connection, direction: Direction) -> Sink:
        """The fast hop from ``src`` to ``dst``, run inside src's receive callback, frame by frame.

        It relays a whole binary message when the tap takes it at once and dst can be written to
        without waiting: what the pump does for it, minus the queue, the task switch and the
        drain. Anything else it declines and detaches itself, so that the pump takes that frame
        and every later one through ``recv()`` and ``send()`` until the queue is empty again.
        """
        offer = self.tap.offer
        protocol = dst.protocol
        monotonic = time.monotonic
        to_client = direction is U2C
        hopped, slot = self.hopped, int(to_client)
        binary = Opcode.BINARY
        data_opcodes = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)

        def hop(frame: Frame) -> bool:
            opcode = frame.opcode
            if opcode not in data_opcodes:
                return False  # ping, pong, close: the connection's own business
            if (
                opcode is binary
                and frame.fin
                and protocol.state is OPEN
                and not dst.paused
                and dst.send_in_progress is None
                and not dst.transport.is_closing()
            ):
                data = frame.data
                message = data if type(data) is bytes else bytes(data)
                if offer(direction, message, monotonic()):
                    if to_client and is_termination_frame(message):
                        self.termination_seen = True
                    protocol.send_binary(message)
                    hopped[slot] += 1
                    try:
                        dst.send_data()
                    except Exception as exc:  # noqa: BLE001 - what send() does with a failed write
                        dst.set_connection_exc(exc)
                        dst.transport.abort()
                    return True
            src.sink = None
            return False

        return hop

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
