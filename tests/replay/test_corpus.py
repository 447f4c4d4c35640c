"""Every recording of the external corpus replays, renders and extracts without raising."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder.cast.reader import open_cast
from recorder.replay.commands import extract_commands
from recorder.replay.render import Snapshots, Theme, render_png, render_svg, render_txt, screen_at
from recorder.replay.text import output_lines
from recorder.replay.transcript import transcript

pytestmark = pytest.mark.timeout(120)


def test_every_corpus_file_renders_and_extracts(corpus: Path) -> None:
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".cast", ".json"))
    assert files
    for path in files:
        with open_cast(path) as reader:
            header = reader.header
            events = list(reader.events())
        end = events[-1].time if events else 0.0
        extract_commands(header, events)
        lines = list(output_lines(header, events))
        list(transcript(header, events))
        screen = screen_at(header, events, end)
        assert render_txt(screen).count("\n") == screen.rows
        theme = Theme.from_asciicast(header.theme)
        render_svg(screen, theme=theme)
        render_png(screen, theme=theme)
        snaps = Snapshots(header, events, every_chars=100_000)
        assert snaps.screen_at(end).lines() == screen.lines(), path.name
        if path.name == "server__big-v3.cast":
            assert len(lines) > 10_000
