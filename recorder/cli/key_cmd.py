"""``recorder key export``: the public half of the key that signs recordings.

``recorder serve`` makes the Ed25519 signing key on its first start (``signing-key.pem`` in the
data directory, mode 0600). Give the exported public key to whoever verifies recordings elsewhere:
``recorder verify FILE --public-key KEY``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from recorder.cast.integrity import KEY_FILE, key_id, load_signing_key, public_key_pem, public_key_raw
from recorder.cli.common import DataOption, data_dir, fail
from recorder.errors import RecorderError

key_app = typer.Typer(help="The key that signs recordings.", no_args_is_help=True)


class KeyFormat(StrEnum):
    """How the public key is printed."""

    PEM = "pem"
    RAW = "raw"


@key_app.command("export")
def export(
    fmt: Annotated[
        KeyFormat,
        typer.Option("--format", help="pem (SubjectPublicKeyInfo) or raw (base64 of the 32 key bytes)."),
    ] = KeyFormat.PEM,
    data: DataOption = None,
) -> None:
    """Print the public key that verifies this data directory's recordings."""
    directory = data_dir(data)
    try:
        public = load_signing_key(directory / KEY_FILE).public_key()
    except FileNotFoundError:
        raise fail(f"no signing key in {directory} yet; `recorder serve` makes it on first start") from None
    except RecorderError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot read the signing key: {exc.strerror or exc}") from None
    typer.echo(
        public_key_pem(public) if fmt is KeyFormat.PEM else public_key_raw(public), nl=fmt is KeyFormat.RAW
    )
    typer.echo(f"key id {key_id(public)}", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``key`` group."""
    app.add_typer(key_app, name="key")
