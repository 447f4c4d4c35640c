"""The browser-safe bearer scheme: the token rides in Sec-WebSocket-Protocol."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

BEARER_SUBPROTOCOL = "base64UrlBearerAuthorization"
_PREFIX = BEARER_SUBPROTOCOL + "."
#: Longest encoded token the SDK will send.
MAX_ENCODED_TOKEN = 4096


def bearer_subprotocols(token: str) -> list[str]:
    """The two subprotocols a client offers: the token-carrying one and the bare sentinel."""
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return [_PREFIX + encoded, BEARER_SUBPROTOCOL]


def token_from_subprotocols(offered: Iterable[str]) -> str | None:
    """The bearer token carried in the offered subprotocols, or None."""
    for proto in offered:
        if proto.startswith(_PREFIX):
            encoded = proto[len(_PREFIX) :]
            if not encoded or len(encoded) > MAX_ENCODED_TOKEN:
                return None
            padded = encoded + "=" * (-len(encoded) % 4)
            try:
                token = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return None
            return token or None
    return None


def token_from_authorization(value: str | None) -> str | None:
    """The token in an ``Authorization: Bearer <token>`` header value, or None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
