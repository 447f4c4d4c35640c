"""The channel frame codec: one channel byte, then the payload (Kubernetes v5.channel.k8s.io)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from recorder.errors import EmptyFrame, FrameTooLarge

#: Largest WebSocket message the service accepts, channel byte included.
MAX_MESSAGE_SIZE = 64 * 1024
#: Largest payload that fits in one message.
MAX_PAYLOAD_SIZE = MAX_MESSAGE_SIZE - 1


class Channel(IntEnum):
    """Wire channel bytes."""

    STDIN = 0x00
    STDOUT = 0x01
    STDERR = 0x02
    STATUS = 0x03
    RESIZE = 0x04
    HEARTBEAT = 0x05
    CLOSE = 0xFF


_KNOWN = frozenset(int(c) for c in Channel)


class CloseCode(IntEnum):
    """WebSocket close codes the service and the proxy use."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    KICKED = 4000


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded message. ``channel`` is the raw byte, so unknown channels survive a round trip."""

    channel: int
    payload: bytes = b""

    @property
    def known(self) -> bool:
        """True when the channel byte is one the protocol defines."""
        return self.channel in _KNOWN

    def serialize(self, max_size: int = MAX_MESSAGE_SIZE) -> bytes:
        """Encode as one WebSocket message."""
        return encode(self.channel, self.payload, max_size=max_size)


def encode(channel: int, payload: bytes = b"", *, max_size: int = MAX_MESSAGE_SIZE) -> bytes:
    """Encode a channel byte and payload, refusing messages over ``max_size``."""
    if not 0 <= channel <= 0xFF:
        raise ValueError(f"channel must be a byte, got {channel}")
    size = len(payload) + 1
    if size > max_size:
        raise FrameTooLarge(size, max_size)
    return bytes((channel,)) + payload


def decode(message: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> Frame:
    """Decode one binary WebSocket message into a Frame."""
    if not message:
        raise EmptyFrame("empty message: a frame needs at least a channel byte")
    if len(message) > max_size:
        raise FrameTooLarge(len(message), max_size)
    return Frame(message[0], bytes(message[1:]))


def chunks(data: bytes, size: int = MAX_PAYLOAD_SIZE) -> list[bytes]:
    """Split a payload (a paste, a burst of output) into pieces that fit one message each."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]
