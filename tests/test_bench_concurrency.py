"""The echo benchmark times keys direct and through the proxy, and counts each process's CPU
while the sessions type (what tells a slow relay from a full machine)."""

from __future__ import annotations

import os

from bench import concurrency


def test_echo_times_keys_both_ways_with_each_processs_cpu_per_key() -> None:
    # Two typists, 2 s a turn: about 80 keys a turn, tens of clock ticks of CPU for each process
    # (/proc counts CPU in 10 ms ticks; a turn of a few keys could read 0).
    results = concurrency.echo(levels=(2,), seconds=4.0, min_samples=0)
    assert results["echo2_keys"] > 0
    assert 0 < results["echo2_direct_median_ms"] <= results["echo2_direct_p99_ms"]
    # Direct: the runtime and the typists; proxied: the proxy too. Every one of them worked.
    assert "echo2_direct_proxy_cpu_us_per_key" not in results
    for side, names in (("direct", ("runtime", "clients")), ("proxied", ("proxy", "runtime", "clients"))):
        for name in names:
            assert results[f"echo2_{side}_{name}_cpu_us_per_key"] > 0, (side, name)
        assert 0 < results[f"echo2_{side}_busy_cores"] <= (os.cpu_count() or 1)
