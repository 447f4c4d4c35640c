"""Incremental UTF-8 decoding per stream, counting the invalid byte sequences it replaces."""

from __future__ import annotations

import codecs

_REPLACEMENT = "\ufffd"
_REPLACEMENT_UTF8 = _REPLACEMENT.encode()
_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")


class StreamDecoder:
    """Decodes one byte stream's chunks; a character split across chunks comes out whole.

    Decoding is the C codec with ``errors="replace"``. Counting happens only when a chunk's text
    holds a U+FFFD: each one is a replacement unless the input spelled it validly. A valid
    ``EF BF BD`` always decodes to U+FFFD (0xEF is a lead byte, so no invalid sequence can swallow
    it), and the decoder never keeps a complete one pending, so the valid ones in a call are exactly
    those in ``pending + chunk``.
    """

    __slots__ = ("_decoder", "invalid_count", "bytes_in")

    def __init__(self) -> None:
        self._decoder = _IncrementalDecoder("replace")
        #: Invalid byte sequences replaced with U+FFFD so far.
        self.invalid_count = 0
        #: Bytes fed so far.
        self.bytes_in = 0

    def decode(self, data: bytes | bytearray | memoryview) -> str:
        """Decode a chunk; an incomplete trailing sequence waits for the next chunk."""
        decoder = self._decoder
        pending: bytes = decoder.buffer
        text: str = decoder.decode(data, False)
        self.bytes_in += len(data)
        if _REPLACEMENT in text:
            valid = (pending + bytes(data)).count(_REPLACEMENT_UTF8)
            self.invalid_count += text.count(_REPLACEMENT) - valid
        return text

    def flush(self) -> str:
        """End of stream: a pending partial sequence becomes U+FFFD (and counts); resets the state."""
        text: str = self._decoder.decode(b"", True)
        # What was pending is an incomplete sequence: it holds no valid U+FFFD.
        self.invalid_count += text.count(_REPLACEMENT)
        self._decoder.reset()
        return text
