"""Search benchmark: N generated shell recordings, imported and indexed, then searched; ``grep -r``
over the same files in the same run for comparison. Prints a table of latencies (median, p99).

    .venv/bin/python -m bench.bench_search [--recordings 1000] [--kb 100] [--reps 30]

PostgreSQL is measured too when RECORDER_TEST_PG_URL is set (in a schema made for the run and
dropped after). ``run(...)`` returns the figures as a flat dict for ``python -m bench``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from recorder.cast.model import Header
from recorder.cast.writer import CastWriter
from recorder.cli.pipeline import import_casts
from recorder.index.db import make_engine, normalise_url, upgrade
from recorder.index.search import search
from recorder.index.store import Index

PG_ENV = "RECORDER_TEST_PG_URL"
#: A word that only a few recordings contain (one in RARE_EVERY).
RARE_WORD = "quetzalcoatl"
RARE_EVERY = 200


@dataclass(frozen=True)
class Probe:
    """One measured query: what it is, how it is written for us and for grep."""

    name: str
    query: str
    kinds: tuple[str, ...]
    grep: list[str]


PROBES = (
    Probe("word, common", "refused", ("command", "output", "input"), ["-riF", "refused"]),
    Probe("word, rare", RARE_WORD, ("command", "output", "input"), ["-riF", RARE_WORD]),
    Probe("phrase", '"permission denied"', ("command", "output", "input"), ["-riF", "permission denied"]),
    Probe("prefix", "kube*", ("command", "output", "input"), ["-riE", r"\bkube"]),
    Probe("command", "git log", ("command",), ["-riE", r"git.{0,40}log"]),
    Probe("command, failed", "nonexistent", ("command",), ["-riF", "nonexistent"]),
)

# -- generation ------------------------------------------------------------------------------------

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu request response timeout "
    "session upstream database cache worker queue retry backoff latency token user admin deploy "
    "release build artifact config service endpoint handler router socket buffer stream"
).split()
SERVICES = ("api", "web", "billing", "auth", "search", "ingest", "mailer", "scheduler")


def _prompt(rnd: random.Random, cwd: str) -> str:
    return f"\x1b]133;A\x07\x1b[32mops@host-{rnd.randint(1, 9)}\x1b[0m:{cwd}$ \x1b]133;B\x07"


def _log_lines(rnd: random.Random, count: int, rare: bool) -> list[str]:
    lines = []
    for i in range(count):
        level = rnd.choice(("INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"))
        words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 10)))
        extra = ""
        if level == "ERROR":
            extra = rnd.choice(
                (" connection refused by 10.0.3.7:5432", " permission denied for relation orders", "")
            )
        if rare and i == count // 2:
            extra += f" {RARE_WORD} anomaly detected"
        lines.append(
            f"2025-03-01T09:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}Z {level} "
            f"service={rnd.choice(SERVICES)} request_id={rnd.getrandbits(48):012x} msg={words}{extra}"
        )
    return lines


def _command(rnd: random.Random, rare: bool) -> tuple[str, list[str], int]:
    """A command line, its output lines and its exit status."""
    kind = rnd.randrange(9)
    if kind == 0:
        return (
            "ls -la /var/log",
            [
                f"-rw-r----- 1 root adm {rnd.randint(100, 99999):6d} Mar  1 09:{rnd.randint(0, 59):02d} "
                f"{rnd.choice(SERVICES)}.log.{n}"
                for n in range(rnd.randint(5, 30))
            ],
            0,
        )
    if kind == 1:
        service = rnd.choice(SERVICES)
        return f"tail -n 200 /var/log/{service}.log", _log_lines(rnd, rnd.randint(50, 200), rare), 0
    if kind == 2:
        return (
            "git log --oneline -n 20",
            [
                f"{rnd.getrandbits(28):07x} {rnd.choice(('fix', 'add', 'refactor', 'bump'))} "
                + " ".join(rnd.choice(WORDS) for _ in range(5))
                for _ in range(20)
            ],
            0,
        )
    if kind == 3:
        return (
            "kubectl get pods -n prod",
            [
                "NAME                                READY   STATUS    RESTARTS   AGE",
                *(
                    f"{rnd.choice(SERVICES)}-{rnd.getrandbits(32):08x}-{rnd.getrandbits(20):05x}   1/1     "
                    f"{rnd.choice(('Running', 'Running', 'CrashLoopBackOff'))}   "
                    f"{rnd.randint(0, 9)}   {rnd.randint(1, 90)}d"
                    for _ in range(rnd.randint(5, 25))
                ),
            ],
            0,
        )
    if kind == 4:
        return "ls /nonexistent", ["ls: cannot access '/nonexistent': No such file or directory"], 2
    if kind == 5:
        return (
            "curl -sS http://10.0.3.7:8080/health",
            ["curl: (7) Failed to connect to 10.0.3.7 port 8080: Connection refused"],
            7,
        )
    if kind == 6:
        return (
            "ps aux --sort=-%cpu | head -20",
            [
                f"root {rnd.randint(1, 40000):6d} {rnd.random() * 50:4.1f} {rnd.random() * 10:4.1f} "
                f"/usr/bin/{rnd.choice(SERVICES)} --{rnd.choice(WORDS)}={rnd.choice(WORDS)}"
                for _ in range(20)
            ],
            0,
        )
    if kind == 7:
        return (
            "cat /etc/passwd",
            [
                f"{rnd.choice(WORDS)}:x:{1000 + n}:{1000 + n}::/home/{rnd.choice(WORDS)}:/bin/bash"
                for n in range(rnd.randint(5, 20))
            ],
            0,
        )
    return "psql -c 'select count(*) from orders'", ["ERROR:  permission denied for table orders"], 1


def write_recording(path: Path, rnd: random.Random, size: int, rare: bool) -> int:
    """Write one recording of about ``size`` bytes (file size); returns the file size."""
    with open(path, "wb") as f:
        writer = CastWriter(
            f, Header(version=2, width=160, height=48, timestamp=1_740_000_000 + rnd.randint(0, 10**7))
        )
        writer.write_header()
        t = 0.0
        cwd = "~"
        writer.write_event(t, "o", _prompt(rnd, cwd))
        while writer.bytes_written < size:
            command, lines, status = _command(rnd, rare and writer.bytes_written > size // 2)
            for ch in command:
                t += rnd.uniform(0.03, 0.15)
                writer.write_event(t, "i", ch)
                writer.write_event(t + 0.002, "o", ch)
            t += 0.2
            writer.write_event(t, "i", "\r")
            body = "\r\n\x1b]133;C\x07" + "".join(line + "\r\n" for line in lines)
            # Output arrives in chunks, as a PTY delivers it.
            for start in range(0, len(body), 4096):
                t += rnd.uniform(0.001, 0.02)
                writer.write_event(t, "o", body[start : start + 4096])
            t += rnd.uniform(0.5, 5.0)
            writer.write_event(t, "o", f"\x1b]133;D;{status}\x07" + _prompt(rnd, cwd))
        writer.write_event(t + 0.5, "i", "exit\r")
        writer.write_event(t + 0.6, "x", "0")
    return path.stat().st_size


def generate(directory: Path, count: int, size: int, seed: int = 7) -> int:
    """Write ``count`` recordings into ``directory``; returns their total size in bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    return sum(
        write_recording(directory / f"session-{i:05d}.cast", rnd, size, rare=i % RARE_EVERY == 0)
        for i in range(count)
    )


# -- measuring -------------------------------------------------------------------------------------


def _latencies(fn: Callable[[], object], reps: int) -> list[float]:
    fn()  # warm caches
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


@contextmanager
def _pg_schema(base: str) -> Iterator[str]:
    schema = f"recorder_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalise_url(base))
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = normalise_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def _measure_backend(
    name: str, url: str, data: Path, files: list[Path], reps: int, results: dict[str, Any]
) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
        index = Index(engine)
        started = time.perf_counter()
        report = import_casts(index, data, files)
        seconds = time.perf_counter() - started
        if report.failed:
            raise RuntimeError(f"{len(report.failed)} recordings failed to import: {report.failed[0].error}")
        total_mb = sum(f.stat().st_size for f in files) / 1e6
        results[f"{name}_index_seconds"] = seconds
        results[f"{name}_index_mb_s"] = total_mb / seconds
        for probe in PROBES:
            hits = search(index, probe.query, kinds=probe.kinds, limit=50)
            samples = _latencies(lambda p=probe: search(index, p.query, kinds=p.kinds, limit=50), reps)
            key = probe.name.replace(", ", "_").replace(" ", "_")
            results[f"{name}_{key}_median_ms"] = statistics.median(samples)
            results[f"{name}_{key}_p99_ms"] = _p99(samples)
            results[f"{name}_{key}_hits"] = len(hits)
    finally:
        engine.dispose()


def _measure_grep(directory: Path, reps: int, results: dict[str, Any]) -> None:
    grep = shutil.which("grep")
    if grep is None:
        return
    for probe in PROBES:
        argv = [grep, "-r", *probe.grep, str(directory)]

        def run_grep(argv: list[str] = argv) -> None:
            # Output is read, not sent to /dev/null: GNU grep stops at the first match when it
            # sees /dev/null, which would not be the same work.
            subprocess.run(argv, capture_output=True, check=False)

        samples = _latencies(run_grep, reps)
        key = probe.name.replace(", ", "_").replace(" ", "_")
        results[f"grep_{key}_median_ms"] = statistics.median(samples)
        results[f"grep_{key}_p99_ms"] = _p99(samples)


def run(
    recordings: int = 1000,
    kb: int = 100,
    reps: int = 30,
    grep_reps: int = 5,
    pg_url: str | None = None,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Generate, import and index, then measure; returns flat figures (ms, seconds, MB/s, counts)."""
    pg_url = pg_url if pg_url is not None else os.environ.get(PG_ENV)
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="bench-search-")) if workdir is None else workdir
    results: dict[str, Any] = {"recordings": recordings}
    try:
        source = root / "casts"
        total = generate(source, recordings, kb * 1000)
        results["corpus_mb"] = total / 1e6
        files = sorted(source.glob("*.cast"))
        _measure_backend(
            "sqlite", f"sqlite:///{root / 'index.sqlite3'}", root / "data-sqlite", files, reps, results
        )
        if pg_url:
            with _pg_schema(pg_url) as url:
                _measure_backend("postgresql", url, root / "data-pg", files, reps, results)
        _measure_grep(source, grep_reps, results)
        for probe in PROBES:
            key = probe.name.replace(", ", "_").replace(" ", "_")
            if f"grep_{key}_median_ms" in results:
                results[f"grep_over_sqlite_{key}"] = (
                    results[f"grep_{key}_median_ms"] / results[f"sqlite_{key}_median_ms"]
                )
        results["sqlite_db_mb"] = (root / "index.sqlite3").stat().st_size / 1e6
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    return results


def print_table(results: dict[str, Any]) -> None:
    """The figures side by side: one row per query, one column group per engine."""
    backends = [b for b in ("sqlite", "postgresql", "grep") if f"{b}_word_common_median_ms" in results]
    table = Table(
        title=f"search over {results['recordings']} recordings, {results['corpus_mb']:.0f} MB "
        "(median / p99 ms; hits capped at 50)"
    )
    table.add_column("query")
    for backend in backends:
        table.add_column(backend, justify="right")
    table.add_column("hits", justify="right")
    for probe in PROBES:
        key = probe.name.replace(", ", "_").replace(" ", "_")
        cells = [
            f"{results[f'{b}_{key}_median_ms']:.1f} / {results[f'{b}_{key}_p99_ms']:.1f}" for b in backends
        ]
        table.add_row(f"{probe.name}: {probe.query}", *cells, str(results.get(f"sqlite_{key}_hits", "")))
    console = Console()
    console.print(table)
    for backend in ("sqlite", "postgresql"):
        if f"{backend}_index_seconds" in results:
            console.print(
                f"{backend}: imported and indexed in {results[f'{backend}_index_seconds']:.1f} s "
                f"({results[f'{backend}_index_mb_s']:.1f} MB/s)"
            )
    console.print(f"sqlite index file: {results['sqlite_db_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_search")
    parser.add_argument("--recordings", type=int, default=1000)
    parser.add_argument("--kb", type=int, default=100, help="size of each recording, in kB")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--grep-reps", type=int, default=5)
    args = parser.parse_args()
    print_table(run(args.recordings, args.kb, args.reps, args.grep_reps))


if __name__ == "__main__":
    main()
