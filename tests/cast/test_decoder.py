"""The per-stream UTF-8 decoder: whole characters across any split, and exact replacement counts."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.cast import StreamDecoder

REPLACEMENT_UTF8 = "\ufffd".encode()


def feed(data: bytes, cuts: list[int]) -> tuple[str, int]:
    decoder = StreamDecoder()
    pieces, start = [], 0
    for cut in sorted(cuts) + [len(data)]:
        pieces.append(decoder.decode(data[start:cut]))
        start = cut
    pieces.append(decoder.flush())
    return "".join(pieces), decoder.invalid_count


def errors_by_strict_decoding(data: bytes) -> int:
    """An oracle that shares nothing with the decoder: count strict decoding failures one by one."""
    count = 0
    while True:
        try:
            data.decode("utf-8")
            return count
        except UnicodeDecodeError as exc:
            count += 1
            data = data[exc.end :]


_PIECES = st.one_of(
    st.binary(max_size=6),
    st.text(max_size=6).map(str.encode),
    st.sampled_from(
        [
            REPLACEMENT_UTF8,  # a real U+FFFD in the stream: not a replacement
            b"\xe2\x82\xac",  # €
            b"\xf0\x9f\x90\xa2",  # 🐢
            b"\xe2\x82",  # truncated 3-byte sequence
            b"\xf0\x9f\x90",  # truncated 4-byte sequence
            b"\xed\xa0\x80",  # encoded surrogate: invalid
            b"\xc0\xaf",  # overlong: invalid
            b"\xf4\x90\x80\x80",  # beyond U+10FFFF: invalid
            b"\x80",  # stray continuation
            b"\xff",
        ]
    ),
)
_DATA = st.lists(_PIECES, max_size=20).map(b"".join)


@settings(max_examples=1000, deadline=None)
@given(data=_DATA, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_property_any_split_decodes_like_whole_and_counts_replacements(data: bytes, cuts: list[int]) -> None:
    cuts = [min(c, len(data)) for c in cuts]
    text, invalid = feed(data, cuts)
    assert text == data.decode("utf-8", "replace")
    assert invalid == errors_by_strict_decoding(data)
    # the brief's formulation: replacements are the U+FFFD the input did not spell itself
    assert invalid == text.count("\ufffd") - data.count(REPLACEMENT_UTF8)


@pytest.mark.parametrize("char", ["é", "€", "🐢", "全"])
def test_multibyte_character_split_at_every_offset_comes_out_whole(char: str) -> None:
    data = f"a{char}b".encode()
    for cut in range(len(data) + 1):
        assert feed(data, [cut]) == (f"a{char}b", 0)


def test_byte_by_byte_feeding_holds_a_partial_character_back() -> None:
    decoder = StreamDecoder()
    assert [decoder.decode(bytes([b])) for b in "🐢".encode()] == ["", "", "", "🐢"]
    assert decoder.flush() == "" and decoder.invalid_count == 0


@pytest.mark.parametrize(
    ("data", "text", "invalid"),
    [
        (b"ok", "ok", 0),
        (b"\xff", "\ufffd", 1),
        (REPLACEMENT_UTF8, "\ufffd", 0),
        (REPLACEMENT_UTF8 + b"\xff", "\ufffd\ufffd", 1),
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd", 3),
        (b"\xc0\xaf", "\ufffd\ufffd", 2),
        (b"a\xe2\x82", "a\ufffd", 1),  # pending at end of stream: one replacement at flush
    ],
)
def test_known_sequences_are_counted(data: bytes, text: str, invalid: int) -> None:
    assert feed(data, []) == (text, invalid)


def test_pending_sequence_is_replaced_and_counted_only_at_flush() -> None:
    decoder = StreamDecoder()
    assert decoder.decode(b"x\xe2\x82") == "x"
    assert decoder.invalid_count == 0
    assert decoder.flush() == "\ufffd"
    assert decoder.invalid_count == 1
    # flush resets: the decoder starts a fresh stream and keeps counting
    assert decoder.decode(b"\xac") == "\ufffd" and decoder.invalid_count == 2


def test_accepts_bytearray_and_memoryview_and_counts_bytes() -> None:
    decoder = StreamDecoder()
    assert decoder.decode(bytearray(b"\xe2\x82")) + decoder.decode(memoryview(b"\xacz")) == "€z"
    assert decoder.bytes_in == 4


def test_counts_stay_with_their_own_decoder_across_threads() -> None:
    bad = b"\xff" * 3 + "é".encode()
    good = "żółw".encode() * 3
    results: dict[str, tuple[str, int]] = {}

    def run(name: str, data: bytes) -> None:
        decoder = StreamDecoder()
        out = "".join(decoder.decode(data[i : i + 1]) for i in range(len(data))) + decoder.flush()
        for _ in range(500):
            out2 = decoder.decode(data) + decoder.flush()
            assert out2 == out
        results[name] = (out, decoder.invalid_count)

    threads = [threading.Thread(target=run, args=(n, d)) for n, d in (("bad", bad), ("good", good))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results["bad"] == ("\ufffd\ufffd\ufffdé", 3 * 501)
    assert results["good"] == ("żółw" * 3, 0)


def test_interleaved_decoders_keep_separate_state() -> None:
    a, b = StreamDecoder(), StreamDecoder()
    assert a.decode(b"\xe2") == "" and b.decode(b"\xff\xf0\x9f") == "\ufffd"
    assert a.decode(b"\x82\xac") == "€" and b.decode(b"\x90\xa2") == "🐢"
    assert (a.invalid_count, b.invalid_count) == (0, 1)
