"""The import direction of architecture.md, checked: a broken rule fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "recorder"

BASE = {"errors", "logfmt"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "logfmt": set(),
    "protocol": BASE,
    "cast": BASE,
    "client": BASE | {"protocol"},
    "runtime": BASE | {"protocol", "cast"},
    "storage": BASE | {"cast"},
    "index": BASE | {"protocol", "cast"},
    "replay": BASE | {"protocol", "cast"},
    "proxy": BASE | {"protocol", "cast", "index", "storage"},
}


def _part(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "recorder" and len(parts) > 1:
                found.add(parts[1])
    return found


MODULES = sorted(p for p in ROOT.rglob("*.py") if _part(p) not in {"cli", "__init__", "__main__"})


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way(path: Path) -> None:
    part = _part(path)
    assert part in ALLOWED, f"{part} is not in architecture.md's package list"
    bad = _imports(path) - ALLOWED[part] - {part}
    assert not bad, f"recorder.{part} must not import {sorted(bad)}"


def test_rule_is_live() -> None:
    assert "proxy" not in ALLOWED["runtime"] and "replay" not in ALLOWED["proxy"]
    assert len(MODULES) > 5
