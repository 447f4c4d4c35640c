"""Shared asciicast values: resize data and the header's recorder context."""

from __future__ import annotations

import pytest

from recorder.cast import CONTEXT_KEY, Header, format_resize, parse_resize


def test_resize_data_round_trips() -> None:
    assert format_resize(80, 24) == "80x24"
    assert parse_resize(format_resize(132, 43)) == (132, 43)


@pytest.mark.parametrize(
    "data", ["", "80", "80x", "x24", "80x24x1", "-1x5", "8 0x24", "٨٠x24", "1234567x1", "80X24"]
)
def test_parse_resize_refuses_anything_but_colsxrows(data: str) -> None:
    assert parse_resize(data) is None


def test_header_context_is_the_recorder_key_or_empty() -> None:
    assert Header(version=2, width=1, height=1, extra={CONTEXT_KEY: {"principal": "bob"}}).context == {
        "principal": "bob"
    }
    assert Header(version=2, width=1, height=1, extra={CONTEXT_KEY: "junk"}).context == {}
