"""The ring buffer that keeps a detached shell's latest output for the next client."""

from __future__ import annotations

#: Output a detached shell keeps for reconnection, as the service does (256 KiB).
RING_BUFFER_SIZE = 256 * 1024


class RingBuffer:
    """Keeps the last ``capacity`` bytes written and counts the bytes it had to drop."""

    __slots__ = ("_buf", "_capacity", "_dropped")

    def __init__(self, capacity: int = RING_BUFFER_SIZE) -> None:
        if capacity < 1:
            raise ValueError(f"ring buffer capacity must be positive, got {capacity}")
        self._capacity = capacity
        # bytearray deletes from the front in O(1) (it keeps a start offset), so trimming is cheap.
        self._buf = bytearray()
        self._dropped = 0

    @property
    def capacity(self) -> int:
        """The most bytes kept."""
        return self._capacity

    @property
    def dropped(self) -> int:
        """Bytes lost to overflow since the last take()."""
        return self._dropped

    def __len__(self) -> int:
        return len(self._buf)

    def write(self, data: bytes) -> int:
        """Append ``data``, dropping the oldest bytes beyond capacity; return how many were dropped."""
        if len(data) >= self._capacity:
            lost = len(self._buf) + len(data) - self._capacity
            self._buf[:] = data[-self._capacity :]
        else:
            self._buf += data
            lost = max(0, len(self._buf) - self._capacity)
            if lost:
                del self._buf[:lost]
        self._dropped += lost
        return lost

    def take(self) -> tuple[bytes, int]:
        """Return the kept bytes and the dropped count, and empty the buffer."""
        data, dropped = bytes(self._buf), self._dropped
        self._buf.clear()
        self._dropped = 0
        return data, dropped
