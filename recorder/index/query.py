"""The search query language, sans I/O: text in, a small AST out, rendered for FTS5 and PostgreSQL.

The language:

- ``word word``: every word must match (AND), case-insensitively;
- ``"quoted phrase"``: these words next to each other, in this order;
- ``prefix*``: a word starting with ``prefix`` (inside a phrase too: ``"git comm*"``, or
  ``"git comm"*`` for its last word).

Words are split the way the index splits text: every character that is not a letter or a decimal
digit is a separator. So ``/etc/passwd`` is the phrase ``"etc passwd"``, ``--force`` is the word
``force``, and whatever FTS5 or tsquery would read as an operator (``AND``, ``OR``, ``NOT``,
``NEAR``, ``-``, ``|``, ``&``, ``!``, ``:``, parentheses) is either a plain word or a separator.
Rendered terms are always quoted, so no user text reaches either engine's syntax.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from recorder.errors import QueryError

#: Longest query accepted, in characters.
MAX_QUERY_LENGTH = 512
#: Most words a query may hold (phrase words included).
MAX_QUERY_TERMS = 32
#: Longest single word, in characters (PostgreSQL refuses lexemes over 2047 bytes).
MAX_TERM_LENGTH = 256
#: Shortest prefix before ``*``: a one-letter prefix expands to most of the index.
MIN_PREFIX_LENGTH = 2
#: Characters of context a snippet keeps around its first match.
SNIPPET_CHARS = 160
#: Marks the text a snippet cut off.
ELLIPSIS = "…"

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Token:
    """A word of a text: where it is (``text[start:end]``) and its lowercase form."""

    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Term:
    """One word to match: lowercase letters and digits; ``prefix`` matches words starting with it."""

    text: str
    prefix: bool = False

    def __str__(self) -> str:
        return self.text + ("*" if self.prefix else "")


@dataclass(frozen=True, slots=True)
class Phrase:
    """Words that must appear next to each other in this order (a single word is a phrase of one)."""

    terms: tuple[Term, ...]

    def __str__(self) -> str:
        inner = " ".join(str(t) for t in self.terms)
        return inner if len(self.terms) == 1 else f'"{inner}"'


@dataclass(frozen=True, slots=True)
class Query:
    """Phrases that must all match."""

    phrases: tuple[Phrase, ...]

    def __str__(self) -> str:
        return " ".join(str(p) for p in self.phrases)

    @property
    def terms(self) -> tuple[Term, ...]:
        """Every term of every phrase."""
        return tuple(t for p in self.phrases for t in p.terms)


def _is_token_char(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] == "L" or category == "Nd"


def tokenize(text: str) -> Iterator[Token]:
    """The words of ``text`` as the index sees them: runs of letters and decimal digits."""
    for match in _WORD.finditer(text):
        word = match.group()
        if word.isascii() or all(_is_token_char(c) for c in word):
            yield Token(match.start(), match.end(), word.lower())
            continue
        # \w also admits other numerics (², ½, Ⅻ): separators for the index, so here too.
        base = match.start()
        start = None
        for i, char in enumerate(word):
            if _is_token_char(char):
                if start is None:
                    start = i
            elif start is not None:
                yield Token(base + start, base + i, word[start:i].lower())
                start = None
        if start is not None:
            yield Token(base + start, match.end(), word[start:].lower())


def _terms(chunk: str) -> list[Term]:
    """Terms of a word or phrase body; a ``*`` right after a word makes it a prefix."""
    return [Term(tok.text, prefix=tok.end < len(chunk) and chunk[tok.end] == "*") for tok in tokenize(chunk)]


def parse_query(text: str) -> Query:
    """Parse a query; anything malformed or over a limit raises QueryError with a one-line message."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"query of {len(text)} characters exceeds the {MAX_QUERY_LENGTH}-character limit")
    if not text.strip():
        raise QueryError("empty query: give one or more words to search for")
    phrases: list[Phrase] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == '"':
            close = text.find('"', i + 1)
            if close < 0:
                raise QueryError(f'unbalanced quote: the " at column {i + 1} is never closed')
            terms = _terms(text[i + 1 : close])
            j = close + 1
            if terms and j < n and text[j] == "*":
                terms[-1] = Term(terms[-1].text, prefix=True)
            while j < n and text[j] == "*":
                j += 1
            i = j
        elif char.isspace():
            i += 1
            continue
        else:
            j = i
            while j < n and text[j] != '"' and not text[j].isspace():
                j += 1
            terms = _terms(text[i:j])
            i = j
        if terms:
            phrases.append(Phrase(tuple(terms)))
    query = Query(tuple(phrases))
    _check(query)
    return query


def _check(query: Query) -> None:
    terms = query.terms
    if not terms:
        raise QueryError("the query has no words to search for (letters or digits)")
    if len(terms) > MAX_QUERY_TERMS:
        raise QueryError(f"query of {len(terms)} words exceeds the {MAX_QUERY_TERMS}-word limit")
    for term in terms:
        if len(term.text) > MAX_TERM_LENGTH:
            raise QueryError(
                f"word of {len(term.text)} characters exceeds the {MAX_TERM_LENGTH}-character limit"
            )
        if term.prefix and len(term.text) < MIN_PREFIX_LENGTH:
            raise QueryError(
                f"prefix {term.text}* is too short: give at least {MIN_PREFIX_LENGTH} characters before *"
            )


def _fts5_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def to_fts5(query: Query) -> str:
    """The query as an FTS5 MATCH expression; every term is a quoted string."""
    parts = []
    for phrase in query.phrases:
        parts.append(" + ".join(_fts5_string(t.text) + (" *" if t.prefix else "") for t in phrase.terms))
    return " AND ".join(parts)


def _tsquery_lexeme(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def to_tsquery(query: Query) -> str:
    """The query as PostgreSQL ``to_tsquery('simple', ...)`` text: ``&``, ``<->``, ``:*``."""
    parts = []
    for phrase in query.phrases:
        inner = " <-> ".join(_tsquery_lexeme(t.text) + (":*" if t.prefix else "") for t in phrase.terms)
        parts.append(inner if len(phrase.terms) == 1 else f"({inner})")
    return " & ".join(parts)


def to_loose_tsquery(query: Query) -> str:
    """Every word of the query, phrases loosened to ``&``: what a text holding a match must hold
    somewhere (PostgreSQL's blocks of output lines, whose tsvectors keep no positions)."""
    return " & ".join(_tsquery_lexeme(t.text) + (":*" if t.prefix else "") for t in query.terms)


def _term_matches(word: str, term: Term) -> bool:
    return word.startswith(term.text) if term.prefix else word == term.text


@lru_cache(maxsize=256)
def _ascii_pattern(phrase: Phrase) -> re.Pattern[str]:
    """The phrase as a regex over ASCII text, found at every word it starts at (overlaps too).

    In ASCII text a word is a run of letters and digits (all of them L* or Nd), so a term is its
    letters between non-word characters (a prefix: followed by any more of them), and the words
    of a phrase are separated by non-word characters only. The lookahead makes every start a
    match of its own, so phrases that overlap ("a a" in "a a a") are all found.
    """
    terms = [re.escape(t.text) + ("[A-Za-z0-9]*" if t.prefix else "") for t in phrase.terms]
    body = "[^A-Za-z0-9]+".join(terms)
    return re.compile(f"(?=(?<![A-Za-z0-9])({body})(?![A-Za-z0-9]))", re.ASCII | re.IGNORECASE)


def match_spans(text: str, query: Query) -> list[tuple[int, int]]:
    """Where the query's phrases occur in ``text``: sorted, merged ``(start, end)`` character spans."""
    found: list[tuple[int, int]] = []
    if text.isascii():
        # Every word of every hit would be tokenized and compared; a regex per phrase is one pass.
        for phrase in query.phrases:
            found.extend(m.span(1) for m in _ascii_pattern(phrase).finditer(text))
    else:
        words = list(tokenize(text))
        for phrase in query.phrases:
            first, *rest = phrase.terms
            starts = [i for i, word in enumerate(words) if _term_matches(word.text, first)]
            last = len(words) - len(rest)
            for i in starts:
                if i < last and all(_term_matches(words[i + k].text, t) for k, t in enumerate(rest, 1)):
                    found.append((words[i].start, words[i + len(rest)].end))
    found.sort()
    merged: list[tuple[int, int]] = []
    for start, end in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet(
    text: str, spans: list[tuple[int, int]], width: int = SNIPPET_CHARS
) -> tuple[str, list[tuple[int, int]]]:
    """At most ``width`` characters of ``text`` around its first span, with the spans moved to fit."""
    if width < 1:
        raise ValueError(f"snippet width must be positive, not {width}")
    if len(text) <= width:
        return text, list(spans)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - width // 4, len(text) - width))
    end = start + width
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(text) else ""
    shift = len(prefix) - start
    moved = [(max(s, start) + shift, min(e, end) + shift) for s, e in spans if e > start and s < end]
    return prefix + text[start:end] + suffix, moved
