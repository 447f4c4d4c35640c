"""Every exception recorder raises on purpose.

Class tree::

    RecorderError
    ├── ProtocolError                 bad bytes or values on the shell protocol
    │   ├── EmptyFrame                a WebSocket message with no channel byte
    │   ├── FrameTooLarge             a message over the 64 KiB limit
    │   ├── InvalidStatus             a STATUS payload that is not a metav1.Status
    │   ├── InvalidResize             a RESIZE payload that is not {"width","height"}
    │   ├── InvalidArn                a runtime ARN that does not parse
    │   ├── InvalidShellId            a shellId outside ^[a-zA-Z0-9][a-zA-Z0-9_-]{0,127}$
    │   └── InvalidPath               a URL path that is not /runtimes/<arn>/ws/shells
    ├── CastError                     asciicast files
    │   ├── CastFormatError           a file that is not asciicast v1, v2 or v3
    │   └── CastWriteError            a recording that could not be written
    ├── IndexStoreError               the SQL index
    ├── UpstreamError                 the upstream shell service
    ├── ClientError                   the shell client (recorder shell / exec)
    └── ConfigError                   bad settings or command-line values

Each message is one line a user can act on.
"""

from __future__ import annotations


class RecorderError(Exception):
    """Base class of every deliberate recorder error."""


class ProtocolError(RecorderError):
    """Bytes or values that break the shell protocol."""


class EmptyFrame(ProtocolError):
    """A WebSocket message with no channel byte."""


class FrameTooLarge(ProtocolError):
    """A message larger than the protocol's maximum message size."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the {limit}-byte limit")
        self.size = size
        self.limit = limit


class InvalidStatus(ProtocolError):
    """A STATUS payload that is not a valid metav1.Status object."""


class InvalidResize(ProtocolError):
    """A RESIZE payload that is not {"width": cols, "height": rows} with positive integers."""


class InvalidArn(ProtocolError):
    """A runtime ARN that does not parse."""


class InvalidShellId(ProtocolError):
    """A shellId outside the allowed pattern."""


class InvalidPath(ProtocolError):
    """A request path that is not /runtimes/<arn>/ws/shells."""


class CastError(RecorderError):
    """Problems with asciicast files."""


class CastFormatError(CastError):
    """A file that is not asciicast v1, v2 or v3."""


class CastWriteError(CastError):
    """A recording that could not be written (disk full, I/O error)."""


class IndexStoreError(RecorderError):
    """Problems with the SQL index."""


class UpstreamError(RecorderError):
    """The upstream shell service refused or failed."""


class ClientError(RecorderError):
    """The shell client could not do what was asked."""


class ConfigError(RecorderError):
    """Bad settings or command-line values."""
