"""``recorder export --redact``: the copy is masked, the original is untouched and provable."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from recorder.cli import export_cmd
from recorder.replay.export import BUNDLE_REDACTIONS, verify_bundle
from tests.cli.conftest import bare_app

runner = CliRunner()
app = bare_app(export_cmd)

CAST = (
    '{"version": 2, "width": 80, "height": 24}\n'
    '[0.1, "o", "$ cat key\\r\\nAKIA1234"]\n'
    '[0.2, "o", "5678ABCD\\r\\npassword: s3cr"]\n'
    '[0.3, "o", "et!\\r\\n$ "]\n'
)


def test_export_redacts_a_split_secret_and_records_it_against_the_original(tmp_path: Path) -> None:
    original = tmp_path / "session.cast"
    original.write_text(CAST)
    before = hashlib.sha256(original.read_bytes()).hexdigest()
    out = tmp_path / "bundle.zip"
    args = ["export", str(original), "--format", "bundle", "-o", str(out), "--data-dir", str(tmp_path / "d")]
    result = runner.invoke(app, [*args, "--redact", r"AKIA[0-9A-Z]{12}", "--redact", r"(?<=password: )\S+"])
    assert result.exit_code == 0, result.stderr
    assert "redacted 2 match(es) of 2 rule(s)" in result.stdout
    assert hashlib.sha256(original.read_bytes()).hexdigest() == before
    verify_bundle(out)
    with zipfile.ZipFile(out) as zf:
        record = json.loads(zf.read(BUNDLE_REDACTIONS))
        members = {name: zf.read(name) for name in zf.namelist()}
    assert record["original_sha256"] == before
    assert record["matches"] == [
        {"time": 0.1, "rule": 0, "length": 16},
        {"time": 0.2, "rule": 1, "length": 7},
    ]
    for name, data in members.items():
        assert b"AKIA1234" not in data and b"5678ABCD" not in data and b"s3cret" not in data, name


def test_a_bad_redaction_pattern_is_a_one_line_error(tmp_path: Path) -> None:
    original = tmp_path / "session.cast"
    original.write_text(CAST)
    out = tmp_path / "out.cast"
    args = ["export", str(original), "--format", "cast-v2", "-o", str(out), "--redact", "[oops"]
    result = runner.invoke(app, [*args, "--data-dir", str(tmp_path / "d")])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and "invalid redaction pattern '[oops'" in lines[0]
    assert not out.exists()
