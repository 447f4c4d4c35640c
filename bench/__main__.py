"""``make bench``: run every benchmark, print one table, write bench/results.json and bench/results.png.

Every comparison is measured side by side in the same run (direct vs proxied, database vs ripgrep),
so the machine's noise hits both sides alike. ``--quick`` is a smoke run with small sizes. The
search corpus is the issue's 10,000 recordings (1 GB) unless ``--recordings`` says otherwise;
PostgreSQL is measured when RECORDER_TEST_PG_URL is set (``make bench`` sets it): its indexing
pipeline on the first ``--pg-index-recordings`` recordings, its search over the whole corpus (the
SQLite index's rows, copied; see bench/bench_search.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import bench_replay, bench_search, concurrency, index_stages, relay

HERE = Path(__file__).resolve().parent

#: figure -> (target as shown, predicate)
TARGETS: dict[str, tuple[str, Callable[[float], bool]]] = {
    "throughput_ratio": (">= 0.90", lambda v: v >= 0.90),
    "echo_added_p99_ms": ("<= 1 ms", lambda v: v <= 1.0),
    "echo1_added_p99_ms": ("<= 1 ms", lambda v: v <= 1.0),
    "echo200_added_p99_ms": ("<= 5 ms", lambda v: v <= 5.0),
    "idle_connections": (">= 1000", lambda v: v >= 1000),
    "idle_kib_per_connection": ("<= 150 KiB", lambda v: v <= 150),
    "seek_median_ms": ("<= 300 ms", lambda v: v <= 300),
    # Command extraction and text indexing, per core (corpus MB / (wall seconds x workers)).
    "sqlite_index_mb_s_per_core": (">= 20 MB/s", lambda v: v >= 20),
}
# Against ripgrep only: when rg is missing the bench compares with grep (grep_... figures), untargeted.
for _backend in bench_search.BACKENDS:
    for _probe in bench_search.PROBES:
        TARGETS[f"rg_over_{_backend}_{_probe.key}"] = (">= 20x", lambda v: v >= 20)
        TARGETS[f"{_backend}_{_probe.key}_median_ms"] = ("<= 100 ms", lambda v: v <= 100)
# The same targets for `recorder search` as a process: what an auditor typing it waits for.
for _key in bench_search.CLI_PROBES:
    for _way in bench_search.CLI_WAYS:
        TARGETS[f"rg_over_sqlite_{_way}_{_key}"] = (">= 20x", lambda v: v >= 20)
        TARGETS[f"sqlite_{_way}_{_key}_median_ms"] = ("<= 100 ms", lambda v: v <= 100)


def _section(name: str, fn: Callable[[], dict[str, Any]], results: dict[str, Any]) -> None:
    started = time.time()
    Console(stderr=True).print(f"[bold]bench:[/] {name} ...")
    results.update(fn())
    results[f"{name}_seconds"] = round(time.time() - started, 1)


def _chart(results: dict[str, Any], path: Path) -> bool:
    """A bar chart of each targeted figure as a fraction of its target (1.0 = just holds)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names, values, colors = [], [], []
    for name, (target, check) in TARGETS.items():
        value = results.get(name)
        if not isinstance(value, int | float):
            continue
        number = float(target.split()[1].rstrip("x"))
        upper = target.startswith("<=")
        # At or below zero (a proxied p99 under the direct one is noise) a ceiling holds outright.
        score = (number / value if value > 0 else 5.0) if upper else value / number
        names.append(name)
        values.append(min(score, 5.0))
        colors.append("tab:green" if check(value) else "tab:red")
    fig, ax = plt.subplots(figsize=(9, max(3, 0.35 * len(names))))
    ax.barh(names, values, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel("figure relative to its target (>= 1 holds; capped at 5)")
    ax.set_title("recorder benchmarks")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _index_stages(count: int) -> dict[str, Any]:
    """Indexing stage by stage on a sample like the search corpus (see bench/index_stages.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        return index_stages.run(index_stages.sample(Path(tmp) / "casts", count), Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--recordings",
        type=int,
        help=f"search corpus size (default {bench_search.DEFAULT_RECORDINGS}, the issue's 1 GB; --quick 100)",
    )
    parser.add_argument(
        "--pg-index-recordings",
        type=int,
        default=bench_search.DEFAULT_PG_INDEX_RECORDINGS,
        help="recordings indexed through the pipeline on PostgreSQL (default %(default)s); search "
        "there runs over a copy of the whole SQLite index",
    )
    args = parser.parse_args()
    quick = args.quick
    results: dict[str, Any] = {}
    started = time.time()
    _section(
        "relay",
        lambda: relay.run(megabytes=20, rounds=2, samples=200) if quick else relay.run(),
        results,
    )
    _section(
        "concurrency",
        lambda: {
            **(
                concurrency.echo(levels=(1, 50), seconds=3.0, min_samples=0)
                if quick
                else concurrency.echo(levels=(1, 50, 200), seconds=6.0)
            ),
            **concurrency.idle(100 if quick else 1000),
        },
        results,
    )
    recordings = args.recordings or (100 if quick else bench_search.DEFAULT_RECORDINGS)
    _section(
        "search",
        lambda: bench_search.run(
            recordings=recordings,
            reps=5 if quick else 30,
            pg_url=os.environ.get("RECORDER_TEST_PG_URL"),
            pg_index_recordings=args.pg_index_recordings,
        ),
        results,
    )
    _section("index_stages", lambda: _index_stages(10 if quick else index_stages.DEFAULT_SAMPLE), results)
    _section("seek", lambda: bench_replay.seek(10 if quick else 100, 20 if quick else 50), results)

    bench_search.print_table(results)

    table = Table(title="recorder benchmarks (comparisons measured side by side in one run)")
    for col in ("figure", "value", "target", "holds"):
        table.add_column(col)
    for name, value in results.items():
        target, check = TARGETS.get(name, ("", None))  # type: ignore[arg-type]
        holds = "" if check is None else ("yes" if check(value) else "NO")
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        table.add_row(name, shown, target, holds)
    # A target with no figure (PostgreSQL unreachable, rg missing) is listed, not silently dropped.
    for name, (target, _check) in TARGETS.items():
        if name not in results:
            table.add_row(name, "not measured", target, "-")
    Console().print(table)
    out = HERE / "results.json"
    out.write_text(
        json.dumps(
            {"machine": platform.platform(), "seconds": round(time.time() - started, 1), "results": results},
            indent=2,
        )
    )
    print(f"wrote {out}")
    png = HERE / "results.png"
    if _chart(results, png):
        print(f"wrote {png}")
    else:
        print("matplotlib is not installed: no chart (make bench installs it)")


if __name__ == "__main__":
    main()
