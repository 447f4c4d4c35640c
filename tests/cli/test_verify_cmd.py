"""``recorder verify``: one verdict line and its exit code, with the data dir's key or a given one."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from recorder.cast.integrity import (
    CHAIN_FORMAT,
    CHAIN_FORMATS,
    CHAIN_V2,
    KEY_FILE,
    Chain,
    load_or_create_signing_key,
    public_key_raw,
    sidecar_path,
)
from recorder.cast.model import Header
from recorder.cast.writer import CastWriter
from recorder.cli import verify_cmd
from tests.cli.conftest import bare_app

runner = CliRunner()
app = bare_app(verify_cmd)


def _record(
    path: Path, key: Ed25519PrivateKey, *, seal: bool = True, chain_format: str = CHAIN_FORMAT
) -> None:
    """A small recording with a checkpoint after every two events, written the way the tap does."""
    chain = Chain(key, chain_format)
    with path.open("wb") as cast, sidecar_path(path).open("wb") as side:
        writer = CastWriter(cast, Header(version=2, width=80, height=24), 2)
        side.write(chain.header_record())
        chain.add(writer.write_header())
        for i in range(6):
            chain.add(writer.write_output(i / 10, f"event {i}\r\n"))
            if i % 2:
                side.write(chain.checkpoint())
                chain.commit()
        if seal:
            side.write(chain.checkpoint(final=True))
            chain.commit()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    return directory


def _key(data: Path) -> Ed25519PrivateKey:
    return load_or_create_signing_key(data / KEY_FILE)


def test_help() -> None:
    result = runner.invoke(app, ["verify", "--help"])
    assert result.exit_code == 0 and "TAMPERED" in result.output


def test_ok_is_exit_0(data: Path, tmp_path: Path) -> None:
    cast = tmp_path / "a.cast"
    _record(cast, _key(data))
    result = runner.invoke(app, ["verify", str(cast), "--data-dir", str(data)])
    assert result.exit_code == 0 and result.output.startswith("OK:")
    assert result.output.rstrip().endswith(f"[{CHAIN_V2}]") and len(result.output.splitlines()) == 1


@pytest.mark.parametrize("chain_format", CHAIN_FORMATS)
def test_the_verdict_names_the_chain_format_it_checked(data: Path, tmp_path: Path, chain_format: str) -> None:
    cast = tmp_path / "a.cast"
    _record(cast, _key(data), seal=False, chain_format=chain_format)
    result = runner.invoke(app, ["verify", str(cast), "--data-dir", str(data)])
    assert result.exit_code == 4 and result.output.rstrip().endswith(f"[{chain_format}]")
    # No sidecar: no format to name.
    sidecar_path(cast).unlink()
    unsigned = runner.invoke(app, ["verify", str(cast), "--data-dir", str(data)])
    assert unsigned.exit_code == 5 and "[" not in unsigned.output


def test_tampered_is_exit_3_with_the_line(data: Path, tmp_path: Path) -> None:
    cast = tmp_path / "a.cast"
    _record(cast, _key(data))
    cast.write_bytes(cast.read_bytes().replace(b"event 3", b"event 8"))
    result = runner.invoke(app, ["verify", str(cast), "--data-dir", str(data)])
    assert result.exit_code == 3 and result.output.startswith("TAMPERED:") and "line 5 " in result.output


def test_truncated_is_exit_4(data: Path, tmp_path: Path) -> None:
    cast = tmp_path / "a.cast"
    _record(cast, _key(data), seal=False)
    result = runner.invoke(app, ["verify", str(cast), "--data-dir", str(data)])
    assert result.exit_code == 4 and "verified up to checkpoint 3" in result.output


def test_no_sidecar_is_unsigned_exit_5(data: Path, tmp_path: Path) -> None:
    cast = tmp_path / "a.cast"
    _record(cast, _key(data))
    sidecar_path(cast).unlink()
    result = runner.invoke(app, ["verify", str(cast), "--data-dir", str(data)])
    assert result.exit_code == 5 and result.output.startswith("UNSIGNED:")


def test_a_given_raw_public_key_works_without_a_data_dir(data: Path, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    cast = tmp_path / "a.cast"
    _record(cast, key)
    pub = tmp_path / "key.b64"
    pub.write_text(public_key_raw(key.public_key()) + "\n")
    result = runner.invoke(app, ["verify", str(cast), "--public-key", str(pub), "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    # The data dir's own key is another one: the signatures do not verify with it.
    _key(data)
    wrong = runner.invoke(app, ["verify", str(cast), "--data-dir", str(data)])
    assert wrong.exit_code == 3 and "signed by key" in wrong.output


def test_usage_errors_are_exit_2(data: Path, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["verify", str(tmp_path / "nope.cast"), "--data-dir", str(data)])
    assert missing.exit_code == 2 and "no recording file" in missing.output
    cast = tmp_path / "a.cast"
    _record(cast, Ed25519PrivateKey.generate())
    no_key = runner.invoke(app, ["verify", str(cast), "--data-dir", str(data)])
    assert no_key.exit_code == 2 and "--public-key" in no_key.output
    bad = tmp_path / "bad.pem"
    bad.write_text("garbage")
    bad_key = runner.invoke(app, ["verify", str(cast), "--public-key", str(bad)])
    assert bad_key.exit_code == 2 and "public key" in bad_key.output
