"""The search query language: parsing, limits, rendering for FTS5 and tsquery, match spans."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recorder.errors import ConfigError, QueryError
from recorder.index.models import FTS5_TOKENIZER
from recorder.index.query import (
    ELLIPSIS,
    MAX_QUERY_LENGTH,
    MAX_QUERY_TERMS,
    MAX_TERM_LENGTH,
    MIN_PREFIX_LENGTH,
    Phrase,
    Query,
    Term,
    match_spans,
    parse_query,
    snippet,
    to_fts5,
    to_loose_tsquery,
    to_tsquery,
    tokenize,
)


def words(*texts: str) -> Query:
    return Query(tuple(Phrase((Term(t),)) for t in texts))


# -- parsing ---------------------------------------------------------------------------------------


def test_words_are_lowercased_and_all_required() -> None:
    assert parse_query("  Grep  ROOT ") == words("grep", "root")


def test_quoted_phrase_keeps_its_words_together_in_order() -> None:
    assert parse_query('"no such file" ls') == Query(
        (Phrase((Term("no"), Term("such"), Term("file"))), Phrase((Term("ls"),)))
    )


def test_punctuation_inside_a_word_makes_a_phrase_of_its_parts() -> None:
    assert parse_query("/etc/passwd") == Query((Phrase((Term("etc"), Term("passwd"))),))
    assert parse_query("--force") == words("force")


def test_star_after_a_word_makes_it_a_prefix() -> None:
    assert parse_query("pass*") == Query((Phrase((Term("pass", prefix=True),)),))


def test_prefix_works_inside_and_after_a_phrase() -> None:
    expected = Query((Phrase((Term("git"), Term("comm", prefix=True))),))
    assert parse_query('"git comm*"') == expected
    assert parse_query('"git comm"*') == expected


def test_engine_operators_are_plain_words_or_separators() -> None:
    assert parse_query("a OR b NOT c NEAR ( d ) -e | f & !g :h") == words(
        "a", "or", "b", "not", "c", "near", "d", "e", "f", "g", "h"
    )
    # Glued to a word, a parenthesis is a separator inside it: NEAR(d) is the phrase "near d".
    assert parse_query("NEAR(d)") == Query((Phrase((Term("near"), Term("d"))),))


def test_empty_quotes_and_lone_punctuation_are_ignored_beside_words() -> None:
    assert parse_query('"" ls | grep') == words("ls", "grep")


def test_a_quote_inside_a_word_starts_a_phrase() -> None:
    assert parse_query('echo"hello world"') == Query(
        (Phrase((Term("echo"),)), Phrase((Term("hello"), Term("world"))))
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('grep "root', r'unbalanced quote: the " at column 6 is never closed'),
        ("", "empty query"),
        ("   \t ", "empty query"),
        ("-- | && ** !!", "no words"),
        ('"" "  "', "no words"),
        ("a*", f"at least {MIN_PREFIX_LENGTH} characters"),
    ],
)
def test_malformed_query_is_a_one_line_query_error(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message) as info:
        parse_query(text)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_query_length_limit_is_exact() -> None:
    longest = "x" * MAX_TERM_LENGTH + " " + "y" * (MAX_QUERY_LENGTH - MAX_TERM_LENGTH - 1)
    assert len(longest) == MAX_QUERY_LENGTH
    assert len(parse_query(longest).terms) == 2
    with pytest.raises(QueryError, match=f"{MAX_QUERY_LENGTH + 1} characters exceeds the {MAX_QUERY_LENGTH}"):
        parse_query(longest + "z")


def test_term_count_limit_is_exact() -> None:
    assert len(parse_query(" ".join(["w"] * MAX_QUERY_TERMS)).terms) == MAX_QUERY_TERMS
    with pytest.raises(QueryError, match=f"{MAX_QUERY_TERMS}-word limit"):
        parse_query(" ".join(["w"] * (MAX_QUERY_TERMS + 1)))
    # Words of phrases count too.
    with pytest.raises(QueryError, match="word limit"):
        parse_query('"' + " ".join(["w"] * (MAX_QUERY_TERMS + 1)) + '"')


def test_term_length_limit_is_exact() -> None:
    assert parse_query("x" * MAX_TERM_LENGTH).terms == (Term("x" * MAX_TERM_LENGTH),)
    with pytest.raises(QueryError, match=f"{MAX_TERM_LENGTH}-character limit"):
        parse_query("x" * (MAX_TERM_LENGTH + 1))


def test_prefix_length_limit_is_exact() -> None:
    assert parse_query("x" * MIN_PREFIX_LENGTH + "*").terms[0].prefix
    with pytest.raises(QueryError, match="too short"):
        parse_query("x" * (MIN_PREFIX_LENGTH - 1) + "*")


# -- tokenizer -------------------------------------------------------------------------------------


def test_tokenizer_keeps_letters_and_decimal_digits_of_any_script() -> None:
    assert [t.text for t in tokenize("Żółć café 日本語 v2 x_y ½ 10²")] == [
        "żółć",
        "café",
        "日本語",
        "v2",
        "x",
        "y",
        "10",
    ]


def test_tokenizer_positions_point_into_the_original_text() -> None:
    text = "ls: /ÉTC/x"
    assert [(text[t.start : t.end], t.text) for t in tokenize(text)] == [
        ("ls", "ls"),
        ("ÉTC", "étc"),
        ("x", "x"),
    ]


# -- rendering -------------------------------------------------------------------------------------


def test_fts5_rendering_quotes_every_term() -> None:
    query = parse_query('root "git comm"* /etc/passwd OR')
    assert to_fts5(query) == '"root" AND "git" + "comm" * AND "etc" + "passwd" AND "or"'


def test_tsquery_rendering_uses_and_followed_by_and_prefix() -> None:
    query = parse_query('root "git comm"* /etc/passwd OR')
    assert to_tsquery(query) == "'root' & ('git' <-> 'comm':*) & ('etc' <-> 'passwd') & 'or'"


def test_loose_tsquery_rendering_keeps_every_word_and_prefix_and_drops_adjacency() -> None:
    query = parse_query('root "git comm"* /etc/passwd OR')
    assert to_loose_tsquery(query) == "'root' & 'git' & 'comm':* & 'etc' & 'passwd' & 'or'"


@pytest.fixture(scope="module")
def fts5() -> Iterator[sqlite3.Connection]:
    """A real FTS5 table with the index's tokenizer, to run rendered queries against."""
    conn = sqlite3.connect(":memory:")
    conn.execute(f'CREATE VIRTUAL TABLE t USING fts5(text, tokenize="{FTS5_TOKENIZER}")')
    conn.executemany(
        "INSERT INTO t(text) VALUES (?)",
        [("cat /etc/passwd",), ("git commit -m fix",), ("grep ROOT or not",), ("git status",)],
    )
    yield conn
    conn.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("/etc/passwd", ["cat /etc/passwd"]),
        ('"git comm"*', ["git commit -m fix"]),
        ("git", ["git commit -m fix", "git status"]),
        ("OR not", ["grep ROOT or not"]),
        ("passw*", ["cat /etc/passwd"]),
        ('"passwd etc"', []),
    ],
)
def test_rendered_fts5_query_matches_what_the_language_says(
    fts5: sqlite3.Connection, query: str, expected: list[str]
) -> None:
    rows = fts5.execute("SELECT text FROM t WHERE t MATCH ? ORDER BY rowid", (to_fts5(parse_query(query)),))
    assert [r[0] for r in rows] == expected


# -- spans and snippets ----------------------------------------------------------------------------


def test_spans_cover_words_phrases_and_prefixes_merged() -> None:
    text = "root:x:0:0:root:/root:/bin/bash"
    assert match_spans(text, parse_query("root")) == [(0, 4), (11, 15), (17, 21)]
    assert match_spans(text, parse_query('"bin bash"')) == [(23, 31)]
    assert match_spans(text, parse_query("ba*")) == [(27, 31)]
    assert match_spans("ls -la /tmp", parse_query("ls la")) == [(0, 2), (4, 6)]
    assert match_spans("git commit", parse_query('git "git comm*"')) == [(0, 10)]


def test_spans_of_a_phrase_need_the_words_adjacent() -> None:
    assert match_spans("no such thing, such no", parse_query('"such no"')) == [(15, 22)]
    assert match_spans("such thing no", parse_query('"such no"')) == []


def test_snippet_cuts_around_the_first_match_and_moves_the_spans() -> None:
    text = "a" * 300 + " needle " + "b" * 300
    spans = match_spans(text, parse_query("needle"))
    short, moved = snippet(text, spans, width=80)
    assert short.startswith(ELLIPSIS) and short.endswith(ELLIPSIS)
    assert len(short) == 80 + 2
    ((start, end),) = moved
    assert short[start:end] == "needle"


def test_snippet_leaves_a_short_text_alone() -> None:
    assert snippet("ls /tmp", [(0, 2)], width=80) == ("ls /tmp", [(0, 2)])
    with pytest.raises(ValueError):
        snippet("x", [], width=0)


# -- fuzzing ---------------------------------------------------------------------------------------

# Queries made of the characters and words that mean something to FTS5, tsquery or this parser.
QUERY_PIECES = st.lists(
    st.sampled_from(list("ab AB\"*-|&!:()^+.,/\\'\t\n\x00é½_日") + ["NEAR", "OR", "AND", "NOT", "<->"]),
    max_size=40,
).map("".join)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=MAX_QUERY_LENGTH + 20), QUERY_PIECES))
def test_any_text_parses_or_raises_query_error_and_runs_in_fts5(fts5: sqlite3.Connection, text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError as exc:
        assert "\n" not in str(exc)
        return
    assert query.terms and len(query.terms) <= MAX_QUERY_TERMS
    assert all(t.text and t.text == t.text.lower() for t in query.terms)
    # The rendered expression is always valid FTS5 syntax: SQLite would raise otherwise.
    fts5.execute("SELECT count(*) FROM t WHERE t MATCH ?", (to_fts5(query),)).fetchone()
    assert to_tsquery(query)
    assert parse_query(str(query)) == query


@settings(max_examples=200)
@given(st.text(max_size=300), st.text(max_size=40))
def test_spans_lie_inside_the_text_and_match_query_words(text: str, raw: str) -> None:
    try:
        query = parse_query(raw)
    except QueryError:
        return
    spans = match_spans(text, query)
    assert spans == sorted(spans)
    for start, end in spans:
        assert 0 <= start < end <= len(text)


def _spans_by_definition(text: str, query: Query) -> list[tuple[int, int]]:
    """The spans as the docstring defines them: every run of words that a phrase matches, merged."""
    words = list(tokenize(text))
    found = []
    for phrase in query.phrases:
        size = len(phrase.terms)
        for i in range(len(words) - size + 1):
            if all(
                words[i + k].text.startswith(t.text) if t.prefix else words[i + k].text == t.text
                for k, t in enumerate(phrase.terms)
            ):
                found.append((words[i].start, words[i + size - 1].end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


# Texts and queries over a small alphabet, so that words and phrases repeat and overlap.
SPAN_TEXT = st.lists(st.sampled_from(["ab", "a", "b", "AB", "aB", " ", " ", "-", "_", "é", "½", "日", "İ"]))


SPAN_PARTS = st.sampled_from(["a", "ab", "b", "aa*", "ab*", '"a b"', '"a a"', '"ab ba*"', "日", "éa*", "i̇"])


@settings(max_examples=500)
@given(
    st.one_of(SPAN_TEXT.map("".join), st.text(max_size=200)),
    # One phrase alone as often as several: other phrases' spans would hide a missed match.
    st.one_of(SPAN_PARTS.map(lambda part: [part]), st.lists(SPAN_PARTS, min_size=1, max_size=8)),
)
@example("a a a", ['"a a"'])  # overlapping occurrences
@example("x a_b-A-B y", ['"a b"'])  # '_' and '-' separate words; case does not matter
@example("ab_aba abab", ['"ab ba*"'])
def test_spans_are_every_phrase_occurrence_merged(text: str, parts: list[str]) -> None:
    query = parse_query(" ".join(parts))
    assert match_spans(text, query) == _spans_by_definition(text, query)


def test_spans_of_overlapping_phrases_cover_all_of_them() -> None:
    assert match_spans("a a a", parse_query('"a a"')) == [(0, 5)]
    assert match_spans("x a_b-A-B y", parse_query('"a b"')) == [(2, 5), (6, 9)]
    assert match_spans("é a a", parse_query('"a a"')) == [(2, 5)]
