"""The proxy's search endpoint, sans I/O: ``GET /v1/search?q=...`` and its answer.

``recorder serve`` answers it for the principals and groups it names as auditors (``--auditor``,
``--auditor-group``); ``recorder search --server`` asks it. A request is a GET of
:data:`SEARCH_PATH` with a bearer token (``Authorization: Bearer``, as for shells) and the query
string below; it has no body. Parameters, each at most once:

- ``q`` (required): the query, in ``recorder search``'s language;
- ``in``: ``commands``, ``output``, ``input`` or ``all`` (the default);
- ``limit``: hits wanted, 1 to the proxy's maximum (default 50);
- the connection filters of ``recorder search``: ``principal``, ``runtime`` (an ARN glob),
  ``since`` and ``until`` (times or ages such as ``24h``, read on the proxy's clock),
  ``exit_code``, ``failed`` (``1``), ``status`` and ``shell``.

A parameter this version does not know is refused, so that a client and a proxy of different
versions never disagree in silence about what was filtered. The answer is 200 with one JSON
object per line (:data:`CONTENT_TYPE`), each a hit as ``recorder.index.hits.hit_to_wire`` writes
it, in the order ``recorder search`` lists them (at most :data:`MAX_ANSWER_BYTES`: the hits past it
are left out and counted in :data:`CUT_HEADER`); or an error status whose body is one line of
text: 400 (bad parameters or query), 401, 403 (not an auditor), 429 (too many failed
authentications), 503 (searches queued to the limit, or the audit log cannot be written: no
search runs unlogged).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from recorder.errors import ProtocolError

SEARCH_PATH = "/v1/search"
#: Media type of a successful answer: JSON lines.
CONTENT_TYPE = "application/x-ndjson"
#: What ``in`` may be, and the kinds of rows each searches.
WHERE: dict[str, tuple[str, ...]] = {
    "commands": ("command",),
    "output": ("output",),
    "input": ("input",),
    "all": ("command", "output", "input"),
}
#: Every parameter a request may carry.
PARAMS = frozenset(
    {"q", "in", "limit", "principal", "runtime", "since", "until", "exit_code", "failed", "status", "shell"}
)
#: Longest request target (path and query string) a proxy reads. A query is at most 512 characters,
#: 4,608 bytes percent-encoded at worst. (The proxy's HTTP parser refuses a request line over 8 KiB
#: with 414 before this applies.)
MAX_SEARCH_TARGET = 8000
#: Largest answer a proxy sends and a client reads: hits that would go past it are left out, and
#: :data:`CUT_HEADER` says how many.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
#: Response header: hits found but left out of the answer to keep it within MAX_ANSWER_BYTES.
CUT_HEADER = "X-Recorder-Hits-Cut"


def is_search_target(target: str) -> bool:
    """Whether a request target (path and query) asks for the search endpoint."""
    return urlsplit(target).path == SEARCH_PATH


def search_target(params: dict[str, str | None]) -> str:
    """The request target for ``params`` (None values left out); ProtocolError for unknown names."""
    unknown = sorted(set(params) - PARAMS)
    if unknown:
        raise ProtocolError(f"unknown search parameter {unknown[0]!r}")
    if not params.get("q"):
        raise ProtocolError("a search needs a query (q)")
    given = [(name, value) for name, value in params.items() if value is not None]
    return f"{SEARCH_PATH}?{urlencode(given)}"


def parse_search_target(target: str) -> dict[str, str]:
    """The parameters of a search request target; ProtocolError says what is wrong, in one line."""
    if len(target) > MAX_SEARCH_TARGET:
        raise ProtocolError(f"search request longer than {MAX_SEARCH_TARGET} characters")
    split = urlsplit(target)
    if split.path != SEARCH_PATH:
        raise ProtocolError(f"not the search endpoint: {split.path!r}")
    try:
        pairs = parse_qsl(split.query, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"bad search query string: {exc}") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMS:
            raise ProtocolError(f"unknown search parameter {name!r}")
        if name in params:
            raise ProtocolError(f"search parameter {name!r} given twice")
        params[name] = value
    if not params.get("q"):
        raise ProtocolError("a search needs a query (q)")
    where = params.get("in", "all")
    if where not in WHERE:
        raise ProtocolError(f"in must be one of {', '.join(WHERE)}, not {where!r}")
    if params.get("failed", "1") != "1":
        raise ProtocolError(f"failed must be 1 when given, not {params['failed']!r}")
    return params
