"""``recorder export``: a recording or a clip of it as asciicast, text, one offline HTML file, or a bundle."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Annotated, Any

import typer

from recorder.cast.integrity import KEY_FILE, load_signing_key, public_key_pem
from recorder.cli.common import DataOption, DbOption, data_dir, db_url, fail
from recorder.cli.source import Source, resolve
from recorder.errors import ExportError, RecorderError
from recorder.replay.export import ExportFormat, compile_redactions, export_recording, integrity_members
from recorder.replay.player import parse_offset


def export(
    target: Annotated[str, typer.Argument(help="Connection id, shell:<pk>, or an asciicast file.")],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="cast-v2, cast-v3, txt, html or bundle (a zip).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    start: Annotated[
        str | None, typer.Option("--from", help="Clip start (seconds, mm:ss or h:mm:ss), screen intact.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Clip end (seconds, mm:ss or h:mm:ss).")] = None,
    title: Annotated[str | None, typer.Option(help="Title of the HTML page (default: the source).")] = None,
    autoplay: Annotated[bool, typer.Option(help="HTML: start playing when the page opens.")] = False,
    whole_shell: Annotated[
        bool, typer.Option("--shell", help="Every connection of the connection's shell, in order.")
    ] = False,
    redact: Annotated[
        list[str] | None,
        typer.Option(
            "--redact",
            metavar="REGEX",
            help="Mask output matching REGEX in the exported copy (repeatable); what was masked is "
            "recorded against the original's SHA-256.",
        ),
    ] = None,
    data: DataOption = None,
    db: DbOption = None,
) -> None:
    """Write a recording (or the clip --from..--to, starting from the right screen) to a file."""
    directory = data_dir(data)
    try:
        t0 = parse_offset(start) if start is not None else 0.0
        t1 = parse_offset(end) if end is not None else None
        rules = compile_redactions(redact or [])
        source = resolve(target, data=directory, db=db_url(db, directory), whole_shell=whole_shell)
        with contextlib.closing(source):
            result = export_recording(
                source.header,
                source.events(),
                fmt,
                output,
                start=t0,
                end=t1,
                title=title or source.header.title or source.label,
                metadata={"source": source.label, **source.metadata},
                autoplay=autoplay,
                redact_rules=rules,
                original_sha256=_original_sha256(source) if rules else None,
                integrity=_integrity(source, directory) if (fmt, t0, t1) == ("bundle", 0, None) else None,
            )
    except RecorderError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{result.path}: {result.format.value}, {result.size} bytes, {result.events} events")
    if result.redactions is not None:
        typer.echo(f"redacted {len(result.redactions.matches)} match(es) of {len(rules)} rule(s)")


def _integrity(source: Source, directory: Path) -> dict[str, bytes] | None:
    """A whole single recording's file, chain sidecar and public key, so the bundle can be verified."""
    if source.path is None or not (directory / KEY_FILE).is_file():
        return None
    public = load_signing_key(directory / KEY_FILE).public_key()
    return integrity_members(source.path, public_key_pem(public))


def _original_sha256(source: Source) -> str | list[str] | None:
    """The SHA-256 of the recording file (or of each file of a shell), as it is on disk now."""
    if source.path is not None:
        digest = hashlib.sha256()
        try:
            with source.path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise ExportError(f"cannot read {source.path}: {exc.strerror or exc}") from None
        return digest.hexdigest()
    connections: list[dict[str, Any]] = source.metadata.get("connections", [])
    return [str(c.get("sha256")) for c in connections] or None


def register(app: typer.Typer) -> None:
    """Add the ``export`` command."""
    app.command("export")(export)
