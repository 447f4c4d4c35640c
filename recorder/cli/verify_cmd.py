"""``recorder verify``: check a recording against its signed integrity chain.

Exit codes: 0 OK, 3 TAMPERED, 4 TRUNCATED, 5 UNSIGNED (no integrity data), 2 usage errors (a
missing file or key, a bad option).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from recorder.cast.integrity import KEY_FILE, Status, load_signing_key, parse_public_key, verify_file
from recorder.cli.common import DataOption, DbOption, data_dir, db_url, fail
from recorder.cli.source import open_index
from recorder.errors import RecorderError
from recorder.storage.local import LocalStorage

#: Exit code of each verdict.
EXIT_CODES: dict[Status, int] = {
    Status.OK: 0,
    Status.TAMPERED: 3,
    Status.TRUNCATED: 4,
    Status.UNSIGNED: 5,
}
USAGE_EXIT = 2


def _recording(target: str, directory: Path, db: str | None) -> Path:
    if target.isascii() and target.isdigit():
        index = open_index(directory, db_url(db, directory))
        try:
            row = index.get_connection(int(target))
        finally:
            index.engine.dispose()
        if row is None or not row.recording_path:
            raise fail(f"no connection {target} with a recording in the index", USAGE_EXIT)
        return LocalStorage(directory).path(row.recording_path)
    return Path(target)


def _public_key(explicit: Path | None, directory: Path) -> Ed25519PublicKey:
    if explicit is not None:
        try:
            return parse_public_key(explicit.read_bytes())
        except OSError as exc:
            raise fail(f"cannot read {explicit}: {exc.strerror or exc}", USAGE_EXIT) from None
    try:
        return load_signing_key(directory / KEY_FILE).public_key()
    except FileNotFoundError:
        raise fail(
            f"no signing key in {directory}; pass --public-key FILE (from `recorder key export`)", USAGE_EXIT
        ) from None


def verify(
    target: Annotated[
        str, typer.Argument(help="Connection id, or an asciicast file (its .chain beside it).")
    ],
    public_key: Annotated[
        Path | None,
        typer.Option(help="Public key (PEM or base64 raw) to verify with; default: the data dir's key."),
    ] = None,
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Verify a recording: OK (exit 0), TAMPERED (3), TRUNCATED (4) or UNSIGNED (5)."""
    directory = data_dir(data)
    try:
        path = _recording(target, directory, db)
        if not path.is_file():
            raise fail(f"no recording file {path}", USAGE_EXIT)
        key = _public_key(public_key, directory)
        verdict = verify_file(path, key)
    except RecorderError as exc:
        raise fail(str(exc), USAGE_EXIT) from None
    except OSError as exc:
        raise fail(f"cannot read {target}: {exc.strerror or exc}", USAGE_EXIT) from None
    # The chain format too: an auditor citing the verdict says which scheme it checked.
    chain = f" [{verdict.chain}]" if verdict.chain else ""
    typer.echo(f"{verdict.status.value}: {path}: {verdict.reason}{chain}")
    raise typer.Exit(EXIT_CODES[verdict.status])


def register(app: typer.Typer) -> None:
    """Add the ``verify`` command."""
    app.command("verify")(verify)
