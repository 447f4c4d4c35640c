"""The embedded AgentCore-compatible runtime: sessions, PTY shells, ring buffer, reconnect, kick."""

from recorder.runtime.ring import RING_BUFFER_SIZE, RingBuffer
from recorder.runtime.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    MAX_ATTACHED_SHELLS,
    Runtime,
    RuntimeConfig,
    bashrc_path,
    default_shell,
    is_loopback,
    serve_runtime,
)
from recorder.runtime.shell import (
    IDLE_TIMEOUT,
    OUTPUT_HIGH_WATER,
    OUTPUT_LOW_WATER,
    TERMINATE_GRACE,
    Attachment,
    Shell,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "IDLE_TIMEOUT",
    "MAX_ATTACHED_SHELLS",
    "OUTPUT_HIGH_WATER",
    "OUTPUT_LOW_WATER",
    "RING_BUFFER_SIZE",
    "TERMINATE_GRACE",
    "Attachment",
    "RingBuffer",
    "Runtime",
    "RuntimeConfig",
    "Shell",
    "bashrc_path",
    "default_shell",
    "is_loopback",
    "serve_runtime",
]
