"""Integrity of recordings: a SHA-256 chain over every line, signed checkpoints, a signed seal.

The cast file stays plain asciicast. Beside it, ``<recording>.chain`` (the *sidecar*) holds one
JSON line per flushed batch, written right after the batch's data:

- line 1, the sidecar header: ``{"chain": "recorder-chain-v2", "hash": "sha256",
  "signature": "ed25519", "key_id": ...}``;
- then checkpoints ``{"n": K, "line": N, "bytes": B, "chain": hex, "d": [...], "sig": b64}``:
  after file line N (1-based, the cast header is line 1) and byte offset B the chain head is
  ``chain``; ``d`` holds the first 16 hex digits of the chain value after each line since the
  previous checkpoint (so the first bad line can be named); ``sig`` is an Ed25519 signature of the
  record without ``sig`` (canonical JSON, see :func:`signed_bytes`), under a domain that names the
  format, so a record of one format is no valid record of the other;
- the last record of a finished recording is the seal: a checkpoint with ``"final": true``, the
  whole file's ``sha256`` and the ``key_id``.

The chain value after file line n (line 1 is the header, so the chain is bound to it):

- ``recorder-chain-v2`` (written now): ``h_n = SHA256(line_1 || ... || line_n)``, the SHA-256 of
  the file up to and including line n. Every byte is hashed once: the seal's ``sha256`` is the
  last chain value, and each ``h_n`` is a copy of the running hash finalised (one block). The
  whole file's digest used to be a second pass over every byte, the largest cost of recording a
  burst after the JSON escaping.
- ``recorder-chain-v1`` (still verified): ``h_0 = SHA256(CHAIN_SEED)``,
  ``h_n = SHA256(h_{n-1} || line_n)``.

Either way a signed value commits to the exact bytes of every line up to it.

Verdicts (:func:`verify`): OK (every line matches, sealed, the whole file's hash matches);
TAMPERED (a line, a record or a signature does not match: ``bad_line`` names the first bad file
line when the cast is at fault); TRUNCATED (a prefix that matches every checkpoint it reaches,
but no seal covers the end, as after a crash or a cut file: ``checkpoint`` says how far the
signed chain verified); UNSIGNED (no sidecar, or one with no records).

What the checkpoints cannot prove: someone who deletes the seal and the later checkpoints *and*
cuts the file there makes a complete recording look like a crashed one (TRUNCATED, never OK).
The chain itself is checked in full only at checkpoints; the 64-bit ``d`` digests locate a bad
line but are not what the verdict trusts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from recorder.cast.model import MAX_LINE_BYTES
from recorder.errors import IntegrityKeyError

#: The chain formats, named first in the sidecar: v2 is written, both are verified.
CHAIN_V1 = "recorder-chain-v1"
CHAIN_V2 = "recorder-chain-v2"
CHAIN_FORMAT = CHAIN_V2
CHAIN_FORMATS = (CHAIN_V1, CHAIN_V2)
#: v1's h_0: its chain starts from this, before the header line is folded in.
CHAIN_SEED = hashlib.sha256(CHAIN_V1.encode()).digest()
#: The sidecar's file name is the recording's plus this.
SIDECAR_SUFFIX = ".chain"
#: Hex digits of each per-line chain value kept in a checkpoint's ``d`` list.
TRAIL_HEX = 16
#: Signing key file in the data directory (PKCS#8 PEM, mode 0600).
KEY_FILE = "signing-key.pem"
#: Prefix of every signed message, so a signature here means nothing elsewhere (nor in the other format).
_SIGN_DOMAINS = {name: f"{name} record\n".encode() for name in CHAIN_FORMATS}


def sidecar_path(cast_path: str | os.PathLike[str]) -> Path:
    """Where the integrity sidecar of a recording lives."""
    return Path(os.fspath(cast_path) + SIDECAR_SUFFIX)


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_bytes(record: dict[str, Any], chain_format: str = CHAIN_FORMAT) -> bytes:
    """The exact bytes a record's signature covers: the format's domain, then canonical JSON minus ``sig``."""
    body = {k: v for k, v in record.items() if k != "sig"}
    return _SIGN_DOMAINS[chain_format] + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _header_object(kid: str, chain_format: str = CHAIN_FORMAT) -> dict[str, Any]:
    return {"chain": chain_format, "hash": "sha256", "signature": "ed25519", "key_id": kid}


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


# -- keys --------------------------------------------------------------------------------------


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The signing key at ``path``; created (0600, exclusively) on first use."""
    try:
        return load_signing_key(path)
    except FileNotFoundError:
        pass
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_signing_key(path)  # another process made it first
    except OSError as exc:
        raise IntegrityKeyError(f"cannot create signing key {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path``; FileNotFoundError if there is none."""
    data = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise IntegrityKeyError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IntegrityKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    """The public key as PEM (SubjectPublicKeyInfo)."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def public_key_raw(public_key: Ed25519PublicKey) -> str:
    """The public key as base64 of its 32 raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def parse_public_key(data: bytes) -> Ed25519PublicKey:
    """A public key from PEM (SubjectPublicKeyInfo) or base64 of the 32 raw bytes."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text)
        except ValueError as exc:
            raise IntegrityKeyError(f"not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise IntegrityKeyError(f"a {type(key).__name__}, not an Ed25519 public key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise IntegrityKeyError("public key must be PEM or base64 of 32 raw bytes") from None
    if len(raw) != 32:
        raise IntegrityKeyError(f"a raw Ed25519 public key has 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


# -- writing: the chain as lines are written ------------------------------------------------------


@dataclass
class Chain:
    """Sans-I/O chain state for one recording: fold lines in, take checkpoint and seal records.

    ``chain_format`` is :data:`CHAIN_V2` unless an old format must be written (tests of the verifier).
    """

    signer: Ed25519PrivateKey
    chain_format: str = CHAIN_FORMAT
    head: bytes = CHAIN_SEED
    lines: int = 0
    size: int = 0
    checkpoints: int = 0
    #: Line count and size as of the last checkpoint that reached the sidecar.
    committed_lines: int = 0
    _trail: list[str] = field(default_factory=list)
    #: The running SHA-256 of every line folded in (v2's chain, and the seal's ``sha256``).
    _file_hash: Any = field(default_factory=hashlib.sha256)
    _v1: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if self.chain_format not in CHAIN_FORMATS:
            raise ValueError(f"unknown chain format {self.chain_format!r}")
        self._v1 = self.chain_format == CHAIN_V1
        if not self._v1:
            self.head = self._file_hash.digest()

    @property
    def key_id(self) -> str:
        """The signing key's id."""
        return key_id(self.signer.public_key())

    def header_record(self) -> bytes:
        """The sidecar's first line."""
        return _line(_header_object(self.key_id, self.chain_format))

    def add(self, line: bytes) -> None:
        """Fold one file line (newline included) into the chain."""
        self._file_hash.update(line)
        if self._v1:
            h = hashlib.sha256(self.head)
            h.update(line)  # not head + line: that copies the line
            self.head = h.digest()
        else:
            # v2: no second pass over the line; the chain value is the running hash finalised.
            self.head = self._file_hash.copy().digest()
        self.lines += 1
        self.size += len(line)
        self._trail.append(self.head.hex()[:TRAIL_HEX])

    @property
    def pending(self) -> int:
        """Lines not yet covered by a checkpoint in the sidecar."""
        return len(self._trail)

    def checkpoint(self, *, final: bool = False) -> bytes:
        """A signed record covering the lines since the last committed one (call commit() once written)."""
        record: dict[str, Any] = {
            "n": self.checkpoints + 1,
            "line": self.lines,
            "bytes": self.size,
            "chain": self.head.hex(),
            "d": list(self._trail),
        }
        if final:
            record.update(final=True, sha256=self._file_hash.hexdigest(), key_id=self.key_id)
        signature = self.signer.sign(signed_bytes(record, self.chain_format))
        record["sig"] = base64.b64encode(signature).decode("ascii")
        return _line(record)

    def commit(self) -> None:
        """The last record from checkpoint() reached the sidecar."""
        self.checkpoints += 1
        self.committed_lines = self.lines
        self._trail.clear()

    @property
    def sha256(self) -> str:
        """SHA-256 of every line folded in so far (the whole file once it is complete)."""
        return str(self._file_hash.hexdigest())


# -- verifying ----------------------------------------------------------------------------------------


class Status(StrEnum):
    """What :func:`verify` concludes."""

    OK = "OK"
    TAMPERED = "TAMPERED"
    TRUNCATED = "TRUNCATED"
    UNSIGNED = "UNSIGNED"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A verification result and how far the signed chain held."""

    status: Status
    reason: str
    #: Checkpoints whose lines all matched, and the file line and byte offset the last one covers.
    checkpoint: int = 0
    lines: int = 0
    bytes: int = 0
    #: First file line (1-based) that does not match, when the cast is at fault.
    bad_line: int | None = None
    #: Bytes of the cast after the last verified checkpoint (TRUNCATED: not covered by any).
    unverified_bytes: int = 0
    key_id: str | None = None
    #: The chain format the sidecar names (``CHAIN_FORMATS``); None when there is no readable sidecar.
    chain: str | None = None


@dataclass(frozen=True, slots=True)
class _Record:
    n: int
    line: int
    size: int
    chain: str
    trail: list[str]
    final: bool
    sha256: str | None


class _BadSidecar(Exception):
    pass


def _sidecar_records(sidecar: bytes, public_key: Ed25519PublicKey) -> tuple[dict[str, Any], list[_Record]]:
    lines = sidecar.split(b"\n")
    # A last line without its newline is what a killed writer leaves: it never counted.
    complete = lines[:-1]
    if not complete:
        raise FileNotFoundError("no integrity records")
    try:
        header = json.loads(complete[0])
    except ValueError:
        raise _BadSidecar("sidecar header is not JSON") from None
    if not isinstance(header, dict) or header.get("chain") not in CHAIN_FORMATS:
        raise _BadSidecar(f"sidecar is not {' or '.join(CHAIN_FORMATS)}")
    chain_format = header["chain"]
    expected = _header_object(key_id(public_key), chain_format)
    if header != expected:
        if header.get("key_id") != expected["key_id"]:
            raise _BadSidecar(f"signed by key {header.get('key_id')}, not by key {expected['key_id']}")
        raise _BadSidecar("sidecar header does not match its format")
    records: list[_Record] = []
    prev_line, prev_bytes = 0, 0
    for i, raw in enumerate(complete[1:], start=1):
        try:
            obj = json.loads(raw)
            sig = base64.b64decode(obj["sig"], validate=True)
            rec = _Record(
                int(obj["n"]),
                int(obj["line"]),
                int(obj["bytes"]),
                str(obj["chain"]),
                [str(d) for d in obj["d"]],
                obj.get("final") is True,
                obj.get("sha256"),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise _BadSidecar(f"checkpoint {i} is not a valid record") from None
        try:
            public_key.verify(sig, signed_bytes(obj, chain_format))
        except InvalidSignature:
            raise _BadSidecar(
                f"checkpoint {i}: signature does not verify with key {key_id(public_key)}"
                f" (the sidecar names key {header.get('key_id')})"
            ) from None
        if rec.n != i or rec.line - len(rec.trail) != prev_line or rec.size < prev_bytes:
            raise _BadSidecar(f"checkpoint {i} does not follow checkpoint {i - 1}")
        if records and records[-1].final:
            raise _BadSidecar(f"checkpoint {i} comes after the seal")
        records.append(rec)
        prev_line, prev_bytes = rec.line, rec.size
    return header, records


def verify(cast: IO[bytes], sidecar: bytes | None, public_key: Ed25519PublicKey) -> Verdict:
    """Check a recording (a binary file object read to its end) against its sidecar and a public key."""
    kid = key_id(public_key)
    if sidecar is None:
        return Verdict(Status.UNSIGNED, "no integrity sidecar", key_id=kid)
    try:
        header, records = _sidecar_records(sidecar, public_key)
    except FileNotFoundError:
        return Verdict(Status.UNSIGNED, "the integrity sidecar holds no records", key_id=kid)
    except _BadSidecar as exc:
        return Verdict(Status.TAMPERED, f"sidecar: {exc}", key_id=kid)
    v1 = header["chain"] == CHAIN_V1
    whole = hashlib.sha256()
    head, n, pos = CHAIN_SEED if v1 else whole.digest(), 0, 0
    done = (0, 0, 0)  # checkpoint, lines, bytes verified

    def verdict(status: Status, reason: str, *, bad: int | None = None, extra: int = 0) -> Verdict:
        k, lines, size = done
        return Verdict(status, reason, k, lines, size, bad, extra, kid, header["chain"])

    for rec in records:
        for digest in rec.trail:
            line = cast.readline(MAX_LINE_BYTES + 2)
            if not line.endswith(b"\n"):
                # The file ends here (or the line is over the limit, which the writer never makes).
                if len(line) <= MAX_LINE_BYTES + 1 and pos + len(line) < rec.size and not cast.read(1):
                    return verdict(
                        Status.TRUNCATED,
                        f"file ends at byte {pos + len(line)}, inside checkpoint {rec.n}",
                        extra=pos + len(line) - done[2],
                    )
                return verdict(Status.TAMPERED, f"line {n + 1} does not match the chain", bad=n + 1)
            whole.update(line)
            head = hashlib.sha256(head + line).digest() if v1 else whole.copy().digest()
            n += 1
            pos += len(line)
            if head.hex()[:TRAIL_HEX] != digest:
                return verdict(Status.TAMPERED, f"line {n} does not match the chain", bad=n)
        if head.hex() != rec.chain or pos != rec.size:
            return verdict(Status.TAMPERED, f"checkpoint {rec.n} does not match lines up to {n}", bad=n)
        done = (rec.n, n, pos)
    rest = 0
    for block in iter(lambda: cast.read(1 << 20), b""):
        rest += len(block)
        whole.update(block)
    if records and records[-1].final:
        seal = records[-1]
        if rest:
            return verdict(Status.TAMPERED, f"{rest} bytes after the sealed end (line {n})", bad=n + 1)
        if whole.hexdigest() != seal.sha256:
            return verdict(Status.TAMPERED, "the file's SHA-256 does not match the seal")
        return verdict(Status.OK, f"{n} lines, {pos} bytes, {seal.n} checkpoints, sealed by key {kid}")
    if not records:
        return verdict(Status.TRUNCATED, "no checkpoint and no seal", extra=rest)
    return verdict(
        Status.TRUNCATED,
        f"verified up to checkpoint {done[0]} (line {done[1]}, byte {done[2]}); no seal",
        extra=rest,
    )


def verify_file(cast_path: Path, public_key: Ed25519PublicKey, sidecar: Path | None = None) -> Verdict:
    """Verify a recording file against the sidecar next to it (or ``sidecar``)."""
    side = sidecar or sidecar_path(cast_path)
    try:
        side_bytes: bytes | None = side.read_bytes()
    except FileNotFoundError:
        side_bytes = None
    with cast_path.open("rb") as f:
        return verify(f, side_bytes, public_key)
