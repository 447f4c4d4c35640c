"""The proxy's WebSocket connections, with a fast hop for the relay.

Through ``recv()`` and ``send()`` of the ``websockets`` asyncio connection, every relayed message
takes a trip through the connection's message queue, a wake-up of the relay task, an async
context manager and a drain; with 200 sessions typing, that machinery was about a third of the
proxy's time holding the interpreter lock. A connection of these classes can instead hand each
incoming frame to a *sink* right where it is parsed (``data_received``): the relay's sink
records a whole binary message and writes it to the other side's protocol there and then.

A sink takes only what needs no waiting and no decision (see ``Relay._hop``); anything else (a
text or fragmented message, a full recording buffer, the other side closing or its write buffer
full) it declines, and then detaches itself: that frame and every later one go through the
message queue to the relay task, which handles them exactly as it does without a sink, in
order. Control frames (ping, pong, close) always stay with the connection.
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame
from websockets.protocol import Event

#: A sink: True when it took the frame, False to let the connection queue it as usual.
Sink = Callable[[Frame], bool]


class Hop(Connection):
    """A connection whose incoming frames go to :attr:`sink` while one is attached."""

    sink: Sink | None = None

    def process_event(self, event: Event) -> None:
        sink = self.sink
        if sink is not None and isinstance(event, Frame) and sink(event):
            return
        super().process_event(event)


class HopServerConnection(Hop, ServerConnection):
    """The client's connection to the proxy (``serve(create_connection=...)``)."""


class HopClientConnection(Hop, ClientConnection):
    """The proxy's connection to an upstream (``connect(create_connection=...)``)."""
