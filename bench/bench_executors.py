"""Benchmark: one ``check`` matrix under each executor, wall time and ratio to the local pool.

    python bench/bench_executors.py [--variant v1 --variant fixed] [--geometry 1x8] [--depth 3]
                                    [--jobs 2] [--invariant NAME ...]

Runs ``pcpu-verify check --no-cache --json`` (no layout proofs, no stateful
machines, an empty baseline) three times on the same matrix:

- ``local``: the process pool of ``--jobs`` workers;
- ``dask``: ``--executor dask`` without a scheduler, so the check starts and
  ends a LocalCluster of ``--jobs`` workers itself;
- ``dask --scheduler``: a LocalCluster of ``--jobs`` workers started here
  beforehand, so its start-up is not counted.

It prints each run's wall time, its ratio to ``local``, and whether its rows
say what the local rows say.  Times are wall-clock on this machine, from one
run each; on a shared machine compare them only within one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from distributed import LocalCluster
from rich.console import Console
from rich.table import Table


def write_config(folder: Path, variants: list[str], geometries: list[str], depth: int, jobs: int) -> Path:
    keys: dict[str, Any] = {
        "variants": variants, "geometries": geometries, "depth": depth, "rlimit": 2_000_000_000, "seed": 0,
        "timeout": 900.0, "budget": 0, "jobs": jobs, "cache-dir": "cache", "baseline": "baseline.json",
        "traces": ["traces"], "stateful-examples": 0, "layout": False,
    }
    (folder / "traces").mkdir(exist_ok=True)
    (folder / "baseline.json").write_text(json.dumps({"format": "pcpu-verify-baseline/1", "suites": {}}))
    config = folder / "check.toml"
    config.write_text("\n".join(["[tool.pcpu-verify]", *(f"{k} = {json.dumps(v)}" for k, v in keys.items())]) + "\n")
    return config


def run(config: Path, args: list[str]) -> tuple[float, list[tuple[str, ...]]]:
    """One check: its wall time and its rows (what each says)."""
    started = time.perf_counter()
    result = subprocess.run(["pcpu-verify", "check", "--config", str(config), "--no-cache", "--json", "--quiet",
                             *args], capture_output=True, text=True, cwd=config.parent, check=False)
    seconds = time.perf_counter() - started
    summary = json.loads(result.stdout)
    rows = sorted((r["variant"], r["geometry"], r["invariant"], r["op"], r["result"]) for r in summary["results"])
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", dest="variants")
    parser.add_argument("--geometry", action="append", dest="geometries")
    parser.add_argument("--invariant", action="append", dest="invariants")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    options = parser.parse_args()
    variants = options.variants or ["v1", "fixed"]
    geometries = options.geometries or ["1x8"]
    invariants = options.invariants or ["free-bits-count", "nr-empty-pop-pages-matches-bitmap"]
    filters = [a for name in invariants for a in ("--invariant", name)]
    console = Console()
    with tempfile.TemporaryDirectory(prefix="bench-executors-") as tmp:
        config = write_config(Path(tmp), variants, geometries, options.depth, options.jobs)
        results = {"local": run(config, [*filters, "--executor", "local"]),
                   "dask": run(config, [*filters, "--executor", "dask"])}
        with LocalCluster(n_workers=options.jobs, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            results["dask --scheduler"] = run(config, [*filters, "--executor", "dask", "--scheduler",
                                                       cluster.scheduler_address])
    local_seconds, local_rows = results["local"]
    table = Table(title=f"check: {', '.join(variants)} x {', '.join(geometries)}, depth {options.depth},"
                        f" {len(invariants)} invariants, {options.jobs} workers")
    for column in ("executor", "rows", "seconds", "ratio to local", "same rows as local"):
        table.add_column(column)
    for name, (seconds, rows) in results.items():
        table.add_row(name, str(len(rows)), f"{seconds:.1f}", f"{seconds / local_seconds:.2f}",
                      "yes" if rows == local_rows else "NO")
    console.print(table)


if __name__ == "__main__":
    main()
