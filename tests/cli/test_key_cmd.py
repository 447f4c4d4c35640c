"""``recorder key export``: the public key as PEM or raw base64, never the private key."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from recorder.cast.integrity import KEY_FILE, key_id, load_or_create_signing_key, parse_public_key
from recorder.cli import key_cmd
from tests.cli.conftest import bare_app

runner = CliRunner()
app = bare_app(key_cmd)


def test_help() -> None:
    result = runner.invoke(app, ["key", "export", "--help"])
    assert result.exit_code == 0 and "raw" in result.output


def test_export_prints_the_public_key_as_pem_and_raw(tmp_path: Path) -> None:
    key = load_or_create_signing_key(tmp_path / KEY_FILE)
    pem = runner.invoke(app, ["key", "export", "--data-dir", str(tmp_path)])
    assert pem.exit_code == 0 and pem.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in pem.stdout
    raw = runner.invoke(app, ["key", "export", "--format", "raw", "--data-dir", str(tmp_path)])
    assert raw.exit_code == 0
    for text in (pem.stdout, raw.stdout):
        assert key_id(parse_public_key(text.encode())) == key_id(key.public_key())


def test_no_key_yet_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["key", "export", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "recorder serve" in result.output
