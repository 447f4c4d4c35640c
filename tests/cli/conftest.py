"""Helpers shared by the command-line tests."""

from __future__ import annotations

from types import ModuleType

import typer


def bare_app(module: ModuleType) -> typer.Typer:
    """An app holding only ``module``'s commands, so other command modules cannot break a test."""
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """Test root."""

    module.register(root)
    return root
