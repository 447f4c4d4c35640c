"""``make bench``: run every benchmark, print one table, write bench/results.json."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import relay

#: figure -> (target description, predicate)
TARGETS: dict[str, tuple[str, Any]] = {
    "throughput_ratio": (">= 0.90", lambda v: v >= 0.90),
    "echo_added_p99_ms": ("<= 1 ms", lambda v: v <= 1.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    started = time.time()
    if args.quick:
        results = relay.run(megabytes=20, rounds=2, samples=200)
    else:
        results = relay.run()
    table = Table(title="recorder benchmarks (ratios measured side by side in one run)")
    for col in ("figure", "value", "target", "holds"):
        table.add_column(col)
    for name, value in results.items():
        target, check = TARGETS.get(name, ("", None))
        holds = "" if check is None else ("yes" if check(value) else "NO")
        table.add_row(name, f"{value:.3f}" if isinstance(value, float) else str(value), target, holds)
    Console().print(table)
    out = Path(__file__).with_name("results.json")
    out.write_text(
        json.dumps(
            {"machine": platform.platform(), "seconds": round(time.time() - started, 1), "results": results},
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
