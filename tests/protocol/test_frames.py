from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.errors import EmptyFrame, FrameTooLarge, ProtocolError
from recorder.protocol import MAX_MESSAGE_SIZE, MAX_PAYLOAD_SIZE, Channel, Frame, chunks, decode, encode


def test_all_seven_channels_have_their_wire_bytes() -> None:
    assert [int(c) for c in Channel] == [0, 1, 2, 3, 4, 5, 0xFF]


def test_unknown_channel_byte_survives_a_round_trip() -> None:
    frame = decode(b"\x42payload")
    assert frame == Frame(0x42, b"payload")
    assert not frame.known
    assert frame.serialize() == b"\x42payload"


def test_empty_message_is_a_named_error() -> None:
    with pytest.raises(EmptyFrame):
        decode(b"")


def test_message_at_the_limit_passes_and_one_byte_more_fails() -> None:
    assert decode(b"\x01" + b"x" * MAX_PAYLOAD_SIZE).payload == b"x" * MAX_PAYLOAD_SIZE
    with pytest.raises(FrameTooLarge) as info:
        decode(b"\x01" + b"x" * (MAX_PAYLOAD_SIZE + 1))
    assert info.value.size == MAX_MESSAGE_SIZE + 1
    with pytest.raises(FrameTooLarge):
        encode(Channel.STDIN, b"x" * (MAX_PAYLOAD_SIZE + 1))


def test_limit_is_a_parameter() -> None:
    with pytest.raises(FrameTooLarge):
        decode(b"\x01abc", max_size=3)
    assert encode(Channel.STDOUT, b"ab", max_size=3) == b"\x01ab"


def test_chunks_fit_one_message_each_and_rejoin() -> None:
    data = bytes(range(256)) * 700
    parts = chunks(data)
    assert b"".join(parts) == data
    assert all(len(encode(Channel.STDIN, p)) <= MAX_MESSAGE_SIZE for p in parts)
    assert chunks(b"") == [b""]
    with pytest.raises(ValueError):
        chunks(b"x", 0)


@given(st.integers(0, 255), st.binary(max_size=4096))
def test_decode_inverts_encode(channel: int, payload: bytes) -> None:
    assert decode(encode(channel, payload)) == Frame(channel, payload)


@given(st.binary(max_size=MAX_MESSAGE_SIZE + 16))
def test_arbitrary_bytes_raise_only_named_errors(data: bytes) -> None:
    try:
        frame = decode(data)
    except ProtocolError:
        return
    assert frame.serialize() == data
