from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.errors import InvalidResize
from recorder.protocol import Resize
from recorder.protocol.resize import MAX_DIMENSION


def test_parse_valid_resize() -> None:
    assert Resize.parse(b'{"width": 120, "height": 40}') == Resize(120, 40)


def test_serialize_is_what_the_sdk_sends() -> None:
    assert Resize(80, 24).serialize() == b'{"width":80,"height":24}'


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{",
        b"[80,24]",
        b'{"width":80}',
        b'{"width":0,"height":24}',
        b'{"width":-1,"height":24}',
        b'{"width":"80","height":24}',
        b'{"width":80.5,"height":24}',
        b'{"width":true,"height":24}',
        b'{"width":80,"height":65536}',
        b"\xff\xfe",
    ],
)
def test_malformed_resize_is_a_named_error(payload: bytes) -> None:
    with pytest.raises(InvalidResize):
        Resize.parse(payload)


@given(st.integers(1, MAX_DIMENSION), st.integers(1, MAX_DIMENSION))
def test_round_trip(w: int, h: int) -> None:
    assert Resize.parse(Resize(w, h).serialize()) == Resize(w, h)


@given(st.binary(max_size=256))
def test_arbitrary_bytes_raise_only_invalid_resize(data: bytes) -> None:
    try:
        Resize.parse(data)
    except InvalidResize:
        pass
