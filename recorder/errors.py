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
    │   │   └── CastTooLarge          a header or v1 document over its size limit
    │   ├── CastWriteError            a recording that could not be written
    │   │   └── WriterStalled         a recording writer stuck past its time bound
    │   ├── IntegrityKeyError         a signing or public key that cannot be used
    │   └── CastValueError            a value the cast library refuses (also a ValueError)
    │       └── CastLineTooLong       an event or header line over the line-length limit
    ├── IndexStoreError               the SQL index
    │   ├── UnknownConnection         no connection with that id
    │   ├── ConnectionNotActive       ending a connection that has already ended
    │   ├── IndexValueTooLong         a value longer than its column allows
    │   └── AuditLogError             an auditor command whose audit-log entry could not be written
    ├── ShellRuntimeError             the embedded runtime (recorder runtime)
    │   ├── ShellSpawnError           a shell program that could not be started
    │   └── TooManyShells             a limit on shells (per session, per runtime) was reached
    ├── AuthenticationFailed          credentials the proxy does not accept (missing, unknown, expired)
    ├── UpstreamError                 the upstream shell service
    │   └── AwsCredentialsError       no usable AWS credentials for the AgentCore upstream
    ├── ClientError                   a client of the proxy (recorder shell / exec / search --server)
    │   ├── ConnectFailed             the WebSocket could not be opened (refused, DNS, TLS, timeout)
    │   │   └── HandshakeRejected     the server answered the upgrade with an HTTP error status
    │   ├── SessionClosed             input or a resize sent on a connection that has ended
    │   ├── RemoteSearchError         a proxy's search endpoint unreachable, refusing, or answering badly
    │   └── ExecError                 recorder exec could not start the command
    │       ├── ShellInUse            the shellId names a shell that already exists
    │       ├── ExecInputTooLarge     a command or stdin over its size limit
    │       ├── PreambleTooLarge      no start marker within the preamble limit
    │       └── ExecStartTimeout      the command did not start within the start timeout
    ├── ReplayError                   replaying a recording (emulation, rendering)
    │   ├── ScreenSizeError           a terminal size outside the emulator's limits
    │   ├── RenderTooLarge            an image over the renderer's pixel limit
    │   └── ExportError               an export that could not be written (output, player assets)
    └── ConfigError                   bad settings or command-line values
        ├── InvalidOffset             a time offset (--at, --from) that is not seconds, mm:ss or h:mm:ss
        ├── QueryError                a search query that cannot be run (syntax or a limit)
        ├── PolicyError               a malformed access policy file (names the rule or line)
        ├── InvalidRedaction          an export --redact pattern that is not a valid regex
        └── PresignExpiryTooLong      a presigned-URL expiry over the service's 300 s maximum

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


class CastTooLarge(CastFormatError):
    """A header line or v1 document larger than the reader's limit."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} of at least {size} bytes exceeds the {limit}-byte limit")
        self.size = size
        self.limit = limit


class CastWriteError(CastError):
    """A recording that could not be written (disk full, I/O error)."""


class WriterStalled(CastWriteError):
    """A recording writer that made no progress within its time bound (a hung disk or mount)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the recording writer made no progress for {seconds:g} s")
        self.seconds = seconds


class IntegrityKeyError(CastError):
    """A signing key or public key that cannot be read or is not Ed25519."""


class CastValueError(CastError, ValueError):
    """A value the cast library refuses: a bad event code, a time that is not finite, a bad speed."""


class CastLineTooLong(CastValueError):
    """An event or header line longer than the line-length limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"line of {size} bytes exceeds the {limit}-byte line limit")
        self.size = size
        self.limit = limit


class IndexStoreError(RecorderError):
    """Problems with the SQL index."""


class UnknownConnection(IndexStoreError):
    """No connection with that id in the index."""

    def __init__(self, conn_id: int) -> None:
        super().__init__(f"no connection {conn_id} in the index")
        self.conn_id = conn_id


class ConnectionNotActive(IndexStoreError):
    """A connection that has already ended cannot be ended again."""

    def __init__(self, conn_id: int, status: str) -> None:
        super().__init__(f"connection {conn_id} is already {status}")
        self.conn_id = conn_id
        self.status = status


class IndexValueTooLong(IndexStoreError):
    """A value longer than its index column allows."""

    def __init__(self, field: str, size: int, limit: int) -> None:
        super().__init__(f"{field} of {size} characters exceeds the {limit}-character limit")
        self.field = field
        self.size = size
        self.limit = limit


class AuditLogError(IndexStoreError):
    """An auditor command whose audit-log entry could not be written (the command does not run)."""


class AuthenticationFailed(RecorderError):
    """Credentials the proxy does not accept; ``principal`` is set when the credential named one."""

    def __init__(self, reason: str, principal: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.principal = principal


class ShellRuntimeError(RecorderError):
    """Problems in the embedded runtime's shells."""


class ShellSpawnError(ShellRuntimeError):
    """A shell program that could not be started."""


class TooManyShells(ShellRuntimeError):
    """A runtime session (or the whole runtime) already has its maximum number of shells."""

    def __init__(self, scope: str, limit: int, kind: str = "attached shells") -> None:
        super().__init__(f"{scope} already has {limit} {kind}; try again once one ends or detaches")
        self.scope = scope
        self.limit = limit


class UpstreamError(RecorderError):
    """The upstream shell service refused or failed."""


class AwsCredentialsError(UpstreamError):
    """No usable AWS credentials (none found, a missing profile, a failed refresh)."""


class ClientError(RecorderError):
    """The shell client could not do what was asked."""


class ConnectFailed(ClientError):
    """The WebSocket to the shell endpoint could not be opened."""


class HandshakeRejected(ConnectFailed):
    """The server answered the WebSocket upgrade with an HTTP error status."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class RemoteSearchError(ClientError):
    """``recorder search --server``: the proxy could not be reached, refused, or answered badly."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SessionClosed(ClientError):
    """Input or a resize sent on a shell connection that has already ended."""


class ExecError(ClientError):
    """recorder exec could not start the command in a fresh shell."""


class ShellInUse(ExecError):
    """The shellId given to exec names a shell that already exists."""


class ExecInputTooLarge(ExecError):
    """A command or a stdin payload larger than exec accepts."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} of {size} bytes exceeds the {limit}-byte limit")
        self.size = size
        self.limit = limit


class PreambleTooLarge(ExecError):
    """The shell printed more than the preamble limit before the command's start marker."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"no start marker within the first {limit} bytes of shell output")
        self.limit = limit


class ExecStartTimeout(ExecError):
    """The command did not start within the start timeout."""


class ReplayError(RecorderError):
    """Problems replaying a recording."""


class ScreenSizeError(ReplayError):
    """A terminal size (header or resize event) outside the emulator's limits."""

    def __init__(self, cols: int, rows: int, max_cols: int, max_rows: int) -> None:
        super().__init__(
            f"terminal size {cols}x{rows} is outside 1x1..{max_cols}x{max_rows}; the recording is damaged"
        )
        self.cols = cols
        self.rows = rows


class RenderTooLarge(ReplayError):
    """An image whose pixel count exceeds the renderer's limit."""

    def __init__(self, pixels: int, limit: int) -> None:
        super().__init__(f"image of {pixels} pixels exceeds the {limit}-pixel limit; use a smaller font size")
        self.pixels = pixels
        self.limit = limit


class ExportError(ReplayError):
    """An export that could not be written: an unwritable output path or missing player assets."""


class ConfigError(RecorderError):
    """Bad settings or command-line values."""


class PresignExpiryTooLong(ConfigError):
    """A presigned-URL expiry longer than the service accepts."""

    def __init__(self, expires: int, limit: int) -> None:
        super().__init__(f"presigned URL expiry of {expires} s exceeds the {limit} s maximum")
        self.expires = expires
        self.limit = limit


class QueryError(ConfigError):
    """A search query that is malformed or over a limit; the message says which and where."""


class InvalidOffset(ConfigError):
    """A time offset that is not seconds, mm:ss or h:mm:ss (or is out of range)."""


class PolicyError(ConfigError):
    """A malformed access policy file; the message names the file and the rule or line."""


class InvalidRedaction(ConfigError):
    """A redaction pattern that is not a valid regular expression (or matches the empty string)."""
