"""The integrity chain: checkpoints, seal, verdicts, keys; fuzzed edits of signed recordings."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.cast.integrity import (
    CHAIN_FORMAT,
    CHAIN_FORMATS,
    CHAIN_V1,
    CHAIN_V2,
    Chain,
    Status,
    Verdict,
    key_id,
    load_or_create_signing_key,
    parse_public_key,
    public_key_pem,
    public_key_raw,
    sidecar_path,
    verify,
    verify_file,
)
from recorder.cast.model import Header
from recorder.cast.writer import CastWriter
from recorder.errors import IntegrityKeyError

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


@dataclass
class Signed:
    cast: bytes
    sidecar: bytes
    #: Byte offset and line count after each checkpoint, in order.
    checkpoints: list[tuple[int, int]]


def signed_recording(
    texts: list[str], batches: list[int], *, seal: bool = True, chain_format: str = CHAIN_FORMAT
) -> Signed:
    """A v2 cast of one ``o`` event per text, checkpointed after every batch of the given sizes."""
    buf = io.BytesIO()
    writer = CastWriter(buf, Header(version=2, width=80, height=24, timestamp=1_700_000_000), 2)
    chain = Chain(KEY, chain_format)
    side = bytearray(chain.header_record())
    marks: list[tuple[int, int]] = []
    chain.add(writer.write_header())
    pending = list(texts)
    t = 0.0
    for size in batches:
        for text in pending[:size]:
            t += 0.25
            chain.add(writer.write_output(t, text))
        pending = pending[size:]
        if chain.pending:
            side += chain.checkpoint()
            chain.commit()
            marks.append((chain.size, chain.lines))
    for text in pending:
        t += 0.25
        chain.add(writer.write_output(t, text))
    if seal:
        side += chain.checkpoint(final=True)
        chain.commit()
        marks.append((chain.size, chain.lines))
    return Signed(buf.getvalue(), bytes(side), marks)


def check(cast: bytes, sidecar: bytes | None, key: Ed25519PrivateKey = KEY) -> Verdict:
    return verify(io.BytesIO(cast), sidecar, key.public_key())


TEXTS = [f"line {i}\r\n" for i in range(12)]


@pytest.mark.parametrize("chain_format", CHAIN_FORMATS)
def test_a_sealed_recording_verifies_ok(chain_format: str) -> None:
    rec = signed_recording(TEXTS, [3, 4, 2], chain_format=chain_format)
    verdict = check(rec.cast, rec.sidecar)
    assert verdict.status is Status.OK
    assert (verdict.lines, verdict.bytes) == (13, len(rec.cast))
    assert verdict.checkpoint == 4 and verdict.key_id == key_id(PUBLIC)


def test_every_sidecar_record_is_one_json_line_with_line_bytes_and_chain() -> None:
    rec = signed_recording(TEXTS, [5, 5])
    header, *records = [json.loads(line) for line in rec.sidecar.splitlines()]
    assert header["chain"] == "recorder-chain-v2" and header["key_id"] == key_id(PUBLIC)
    assert [(r["bytes"], r["line"]) for r in records] == rec.checkpoints
    assert all(len(r["chain"]) == 64 for r in records)
    seal = records[-1]
    assert seal["final"] is True and seal["key_id"] == key_id(PUBLIC)
    assert seal["sha256"] == hashlib.sha256(rec.cast).hexdigest()


def test_a_v2_chain_value_is_the_sha256_of_the_file_up_to_its_line() -> None:
    rec = signed_recording(TEXTS, [5, 5])
    _header, *records = [json.loads(line) for line in rec.sidecar.splitlines()]
    ends = [len(b"".join(rec.cast.splitlines(keepends=True)[:n])) for n in range(1, 14)]
    trail = [d for r in records for d in r["d"]]
    assert trail == [hashlib.sha256(rec.cast[:end]).hexdigest()[:16] for end in ends]
    for r in records:
        assert r["chain"] == hashlib.sha256(rec.cast[: r["bytes"]]).hexdigest()
    assert records[-1]["chain"] == records[-1]["sha256"]


def test_a_v1_chain_value_folds_each_line_into_the_last_value() -> None:
    rec = signed_recording(TEXTS, [13], chain_format=CHAIN_V1)
    _header, first, _seal = [json.loads(line) for line in rec.sidecar.splitlines()]
    head = hashlib.sha256(CHAIN_V1.encode()).digest()
    for line in rec.cast.splitlines(keepends=True):
        head = hashlib.sha256(head + line).digest()
    assert first["chain"] == head.hex()


@pytest.mark.parametrize(("signed_as", "relabelled"), [(CHAIN_V1, CHAIN_V2), (CHAIN_V2, CHAIN_V1)])
def test_records_signed_for_one_format_do_not_verify_as_the_other(signed_as: str, relabelled: str) -> None:
    rec = signed_recording(TEXTS, [4], chain_format=signed_as)
    side = rec.sidecar.replace(signed_as.encode(), relabelled.encode(), 1)
    verdict = check(rec.cast, side)
    assert verdict.status is Status.TAMPERED and "signature does not verify" in verdict.reason


def test_an_unknown_chain_format_is_tampered_and_refused_for_writing() -> None:
    rec = signed_recording(TEXTS, [4])
    verdict = check(rec.cast, rec.sidecar.replace(CHAIN_V2.encode(), b"recorder-chain-v9", 1))
    assert verdict.status is Status.TAMPERED and "sidecar is not" in verdict.reason
    with pytest.raises(ValueError, match="unknown chain format"):
        Chain(KEY, "recorder-chain-v9")


@pytest.mark.parametrize("chain_format", CHAIN_FORMATS)
def test_a_changed_line_is_tampered_at_that_line(chain_format: str) -> None:
    rec = signed_recording(TEXTS, [4, 4], chain_format=chain_format)
    lines = rec.cast.splitlines(keepends=True)
    lines[6] = lines[6].replace(b"line 5", b"line X")
    verdict = check(b"".join(lines), rec.sidecar)
    assert verdict.status is Status.TAMPERED and verdict.bad_line == 7
    assert verdict.checkpoint == 1  # the first checkpoint (lines 1..5) still held


def test_no_seal_is_truncated_up_to_the_last_checkpoint() -> None:
    rec = signed_recording(TEXTS, [3, 3], seal=False)
    verdict = check(rec.cast, rec.sidecar)
    assert verdict.status is Status.TRUNCATED
    assert (verdict.bytes, verdict.lines) == rec.checkpoints[-1]
    assert verdict.unverified_bytes == len(rec.cast) - rec.checkpoints[-1][0]


def test_a_sidecar_cut_mid_record_counts_only_whole_records() -> None:
    rec = signed_recording(TEXTS, [3, 3])
    cut = rec.sidecar[: rec.sidecar.rindex(b"\n", 0, len(rec.sidecar) - 1) + 10]
    verdict = check(rec.cast, cut)
    assert verdict.status is Status.TRUNCATED and verdict.checkpoint == 2


def test_missing_or_empty_sidecar_is_unsigned() -> None:
    rec = signed_recording(TEXTS, [3])
    assert check(rec.cast, None).status is Status.UNSIGNED
    assert check(rec.cast, b"").status is Status.UNSIGNED


def test_another_key_is_tampered_and_names_both_keys() -> None:
    rec = signed_recording(TEXTS, [3])
    other = Ed25519PrivateKey.generate()
    verdict = check(rec.cast, rec.sidecar, other)
    assert verdict.status is Status.TAMPERED
    assert key_id(PUBLIC) in verdict.reason and key_id(other.public_key()) in verdict.reason


def test_a_forged_checkpoint_or_a_dropped_one_is_tampered() -> None:
    rec = signed_recording(TEXTS, [3, 3, 3])
    lines = rec.sidecar.splitlines(keepends=True)
    forged = json.loads(lines[2])
    forged["chain"] = "0" * 64
    lines_forged = [*lines[:2], (json.dumps(forged) + "\n").encode(), *lines[3:]]
    assert check(rec.cast, b"".join(lines_forged)).status is Status.TAMPERED
    dropped = [*lines[:2], *lines[3:]]
    assert check(rec.cast, b"".join(dropped)).status is Status.TAMPERED


def test_appending_to_a_sealed_recording_is_tampered() -> None:
    rec = signed_recording(TEXTS, [3])
    verdict = check(rec.cast + b'[9.0, "o", "more"]\n', rec.sidecar)
    assert verdict.status is Status.TAMPERED and verdict.bad_line == 14


def test_verify_file_finds_the_sidecar_beside_the_cast(tmp_path: Path) -> None:
    rec = signed_recording(TEXTS, [3])
    cast = tmp_path / "a.cast"
    cast.write_bytes(rec.cast)
    assert verify_file(cast, PUBLIC).status is Status.UNSIGNED
    sidecar_path(cast).write_bytes(rec.sidecar)
    assert sidecar_path(cast).name == "a.cast.chain"
    assert verify_file(cast, PUBLIC).status is Status.OK


def test_signing_key_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"
    key = load_or_create_signing_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_or_create_signing_key(path)
    assert key_id(again.public_key()) == key_id(key.public_key())


def test_public_key_round_trips_as_pem_and_raw() -> None:
    for text in (public_key_pem(PUBLIC), public_key_raw(PUBLIC)):
        assert key_id(parse_public_key(text.encode())) == key_id(PUBLIC)
    with pytest.raises(IntegrityKeyError):
        parse_public_key(b"not a key")
    with pytest.raises(IntegrityKeyError):
        parse_public_key(b"AAAA")


def test_a_key_file_that_is_not_ed25519_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(IntegrityKeyError):
        load_or_create_signing_key(path)


# -- fuzzing -------------------------------------------------------------------------------------------

recordings = st.builds(
    signed_recording,
    st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=16),
    st.lists(st.integers(1, 5), min_size=0, max_size=6),
    chain_format=st.sampled_from(CHAIN_FORMATS),
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(recordings, st.data())
def test_any_edit_that_is_not_a_cut_is_tampered(rec: Signed, data: st.DataObject) -> None:
    cast = bytearray(rec.cast)
    ops = ["flip", "delete", "insert", "swap_lines", "swap_bytes", "dup_line", "drop_line"]
    op = data.draw(st.sampled_from(ops))
    if op == "flip":
        i = data.draw(st.integers(0, len(cast) - 1))
        cast[i] ^= data.draw(st.integers(1, 255))
    elif op == "delete":
        i = data.draw(st.integers(0, len(cast) - 2))
        j = data.draw(st.integers(i + 1, len(cast) - 1))  # never a suffix: that is a cut
        del cast[i:j]
    elif op == "insert":
        i = data.draw(st.integers(0, len(cast)))
        cast[i:i] = data.draw(st.binary(min_size=1, max_size=20))
    elif op in ("dup_line", "drop_line"):
        lines = bytes(cast).splitlines(keepends=True)
        i = data.draw(st.integers(0, len(lines) - 2))  # dropping the last line would be a cut
        if op == "dup_line":
            lines.insert(i, lines[i])
        else:
            del lines[i]
        cast = bytearray(b"".join(lines))
    elif op == "swap_lines":
        lines = bytes(cast).splitlines(keepends=True)
        a, b = sorted(
            data.draw(st.lists(st.integers(0, len(lines) - 1), min_size=2, max_size=2, unique=True))
        )
        lines[a], lines[b] = lines[b], lines[a]
        cast = bytearray(b"".join(lines))
    else:
        i = data.draw(st.integers(0, len(cast) - 2))
        cast[i], cast[i + 1] = cast[i + 1], cast[i]
    if bytes(cast) == rec.cast:
        return  # the edit changed nothing (two equal lines or bytes swapped)
    if rec.cast.startswith(bytes(cast)):
        # A cut after all: a deletion whose kept tail repeats the bytes it removed from, e.g.
        # the last line's newline kept after deleting from just past the previous line's newline.
        return
    verdict = check(bytes(cast), rec.sidecar)
    assert verdict.status is Status.TAMPERED, (op, verdict)


@FUZZ
@given(recordings, st.data())
def test_a_cut_at_any_byte_is_truncated_with_the_right_prefix(rec: Signed, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(rec.cast) - 1))
    verdict = check(rec.cast[:cut], rec.sidecar)
    assert verdict.status is Status.TRUNCATED, verdict
    covered = [(size, lines) for size, lines in rec.checkpoints if size <= cut]
    expected = covered[-1] if covered else (0, 0)
    assert (verdict.bytes, verdict.lines) == expected
    assert verdict.checkpoint == len(covered)
    assert verdict.unverified_bytes == cut - expected[0]


@FUZZ
@given(recordings, st.data())
def test_any_change_to_the_sidecar_is_never_ok(rec: Signed, data: st.DataObject) -> None:
    side = bytearray(rec.sidecar)
    i = data.draw(st.integers(0, len(side) - 1))
    side[i] ^= data.draw(st.integers(1, 255))
    assert check(rec.cast, bytes(side)).status is not Status.OK


@FUZZ
@given(recordings, st.data())
def test_a_sidecar_cut_at_any_byte_reads_as_a_crash_never_as_tampering(
    rec: Signed, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(rec.sidecar) - 1))
    verdict = check(rec.cast, rec.sidecar[:cut])
    assert verdict.status in (Status.TRUNCATED, Status.UNSIGNED), verdict
