"""Who may open shells where: allow and deny rules over principals, groups, runtime ARNs, qualifiers.

A policy file is TOML with ``[[allow]]`` and ``[[deny]]`` tables::

    [[allow]]
    name = "ops on dev"                      # optional, shown in decisions
    groups = ["ops"]                         # principals and/or groups; neither means anyone
    runtimes = ["arn:aws:bedrock-agentcore:*:*:runtime/dev-*"]   # fnmatch globs; absent: any
    qualifiers = ["DEFAULT"]                 # fnmatch globs; absent: any

    [[deny]]
    principals = ["mallory"]

A rule matches when the caller is one of its principals or in one of its groups (when it names
either) and the runtime ARN and qualifier match one of its globs. Any matching deny rule denies;
otherwise a matching allow rule allows; otherwise the request is denied. Parsing does no I/O
beyond :func:`load_policy` reading the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from recorder.errors import PolicyError

#: Largest policy file read.
MAX_POLICY_BYTES = 1024 * 1024
#: Most rules a policy may hold.
MAX_RULES = 10_000
_KEYS = frozenset({"name", "principals", "groups", "runtimes", "qualifiers"})
_EFFECTS = ("deny", "allow")


@dataclass(frozen=True, slots=True)
class Rule:
    """One allow or deny rule; empty tuples of runtimes/qualifiers mean any."""

    effect: str
    number: int
    name: str | None = None
    principals: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    runtimes: tuple[str, ...] = ()
    qualifiers: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How decisions name the rule: ``allow[2] "ops on dev"``."""
        base = f"{self.effect}[{self.number}]"
        return f'{base} "{self.name}"' if self.name else base

    def matches(self, principal: str | None, groups: Sequence[str], runtime_arn: str, qualifier: str) -> bool:
        """Whether this rule covers the caller, runtime and qualifier."""
        if self.principals or self.groups:
            who = (principal is not None and principal in self.principals) or any(
                g in self.groups for g in groups
            )
            if not who:
                return False
        if self.runtimes and not any(fnmatchcase(runtime_arn, g) for g in self.runtimes):
            return False
        return not self.qualifiers or any(fnmatchcase(qualifier, g) for g in self.qualifiers)


@dataclass(frozen=True, slots=True)
class Decision:
    """Allowed or not, and the rule (or default) that decided."""

    allowed: bool
    rule: str


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy: deny rules win, then allow rules, then the default deny."""

    rules: tuple[Rule, ...]
    source: str = "<policy>"

    def decide(
        self, principal: str | None, groups: Sequence[str], runtime_arn: str, qualifier: str
    ) -> Decision:
        """The decision for ``principal`` (in ``groups``) opening a shell on ``runtime_arn``/``qualifier``."""
        for effect in _EFFECTS:
            for rule in self.rules:
                if rule.effect == effect and rule.matches(principal, groups, runtime_arn, qualifier):
                    return Decision(effect == "allow", rule.label)
        return Decision(False, "default deny (no rule allows)")


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where}: {key} must be a non-empty string or list of non-empty strings")
    return tuple(value)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse policy TOML; any mistake is a one-line PolicyError naming the line or the rule."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message carries "(at line N, column M)".
        raise PolicyError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(doc) - set(_EFFECTS)
    if unknown:
        raise PolicyError(f"{source}: unknown top-level key(s) {sorted(unknown)}: use [[allow]] and [[deny]]")
    rules: list[Rule] = []
    for effect in _EFFECTS:
        tables = doc.get(effect, [])
        if not isinstance(tables, list):
            raise PolicyError(f"{source}: {effect} must be an array of tables ([[{effect}]])")
        for number, table in enumerate(tables, start=1):
            where = f"{source}: {effect}[{number}]"
            if not isinstance(table, dict):
                raise PolicyError(f"{where}: must be a table ([[{effect}]])")
            extra = set(table) - _KEYS
            if extra:
                raise PolicyError(f"{where}: unknown key(s) {sorted(extra)}; allowed: {sorted(_KEYS)}")
            name = table.get("name")
            if name is not None and not isinstance(name, str):
                raise PolicyError(f"{where}: name must be a string")
            fields = {k: _strings(where, k, table[k]) for k in _KEYS - {"name"} if k in table}
            rules.append(Rule(effect, number, name, **fields))
    if len(rules) > MAX_RULES:
        raise PolicyError(f"{source}: {len(rules)} rules exceed the {MAX_RULES}-rule limit")
    return Policy(tuple(rules), source)


def load_policy(path: Path) -> Policy:
    """Read and parse a policy file."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"policy file {path} exceeds {MAX_POLICY_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"policy file {path} is not UTF-8") from None
    return parse_policy(text, str(path))
