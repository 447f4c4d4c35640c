"""The search endpoint's request target: built by the client, read by the proxy, strictly."""

from __future__ import annotations

import pytest

from recorder.errors import ProtocolError
from recorder.protocol.search import (
    MAX_SEARCH_TARGET,
    PARAMS,
    SEARCH_PATH,
    is_search_target,
    parse_search_target,
    search_target,
)


def test_what_the_client_sends_is_what_the_proxy_reads() -> None:
    params = {
        "q": 'kube* "permission denied" /etc/passwd & ; = % \u00e9',
        "in": "output",
        "limit": "10",
        "principal": "alice@example.com",
        "runtime": "*:runtime/prod-*",
        "since": "2026-01-01T00:00+02:00",
        "until": "24h",
        "exit_code": "-1",
        "failed": "1",
        "status": "ended",
        "shell": "abc-123",
    }
    assert set(params) == PARAMS
    target = search_target(params)
    assert target.startswith(SEARCH_PATH + "?") and is_search_target(target)
    assert parse_search_target(target) == params
    # None means not given.
    assert parse_search_target(search_target({"q": "x", "principal": None})) == {"q": "x"}


def test_only_the_search_path_is_the_search_endpoint() -> None:
    assert is_search_target("/v1/search")
    assert not is_search_target("/v1/search/")
    assert not is_search_target("/runtimes/x/ws/shells?q=1")
    with pytest.raises(ProtocolError, match="not the search endpoint"):
        parse_search_target("/v1/searches?q=x")


@pytest.mark.parametrize(
    ("params", "message"),
    [({"query": "x"}, "unknown search parameter 'query'"), ({"in": "all"}, "a search needs a query (q)")],
)
def test_the_client_refuses_to_build_a_request_the_proxy_would_refuse(
    params: dict[str, str | None], message: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        search_target(params)
    assert str(info.value) == message


def test_a_request_target_over_the_limit_is_refused_before_it_is_parsed() -> None:
    at_limit = SEARCH_PATH + "?q=" + "a" * (MAX_SEARCH_TARGET - len(SEARCH_PATH) - 3)
    assert len(at_limit) == MAX_SEARCH_TARGET
    assert parse_search_target(at_limit)["q"].startswith("aaa")
    with pytest.raises(ProtocolError, match=f"longer than {MAX_SEARCH_TARGET}"):
        parse_search_target(at_limit + "a")
