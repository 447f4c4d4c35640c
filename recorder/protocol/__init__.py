"""The AgentCore shell protocol, sans I/O: bytes in, values out."""

from recorder.protocol.bearer import (
    BEARER_SUBPROTOCOL,
    bearer_subprotocols,
    token_from_authorization,
    token_from_subprotocols,
)
from recorder.protocol.frames import (
    MAX_MESSAGE_SIZE,
    MAX_PAYLOAD_SIZE,
    Channel,
    CloseCode,
    Frame,
    chunks,
    decode,
    encode,
)
from recorder.protocol.ids import (
    DEFAULT_QUALIFIER,
    LOCAL_RUNTIME_ARN,
    RuntimeArn,
    new_session_id,
    new_shell_id,
    validate_qualifier,
    validate_session_id,
    validate_shell_id,
)
from recorder.protocol.paths import SESSION_HEADER, SHELL_ID_HEADER, ShellRequest, parse_target, shell_path
from recorder.protocol.resize import Resize
from recorder.protocol.status import Confirmation, StatusInfo, Termination

__all__ = [
    "BEARER_SUBPROTOCOL",
    "DEFAULT_QUALIFIER",
    "LOCAL_RUNTIME_ARN",
    "MAX_MESSAGE_SIZE",
    "MAX_PAYLOAD_SIZE",
    "SESSION_HEADER",
    "SHELL_ID_HEADER",
    "Channel",
    "CloseCode",
    "Confirmation",
    "Frame",
    "Resize",
    "RuntimeArn",
    "ShellRequest",
    "StatusInfo",
    "Termination",
    "bearer_subprotocols",
    "chunks",
    "decode",
    "encode",
    "new_session_id",
    "new_shell_id",
    "parse_target",
    "shell_path",
    "token_from_authorization",
    "token_from_subprotocols",
    "validate_qualifier",
    "validate_session_id",
    "validate_shell_id",
]
