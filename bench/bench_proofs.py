"""Benchmark: proof time per obligation and per suite, geometry by geometry, up to the 10-minute limit.

    python bench/bench_proofs.py [--variant v1] [--budget 600] [--depth 4] [GEOMETRY ...]

Each geometry's suite runs in a child process killed at the budget, so the
table ends with the largest geometry whose whole suite fits.  Times are
wall-clock on this machine; compare geometries by their ratio to the first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

DEFAULT = ["1x8", "2x8", "3x8", "2x16", "4x16", "2x64", "4x64"]


def run_one(variant: str, geometry: str, depth: int, budget: float) -> tuple[dict[str, object] | None, float]:
    cmd = ["pcpu-verify", "prove", "--variant", variant, "--geometry", geometry, "--depth", str(depth), "--json"]
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=budget)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start
    elapsed = time.perf_counter() - start
    if out.returncode not in (0, 3):
        print(out.stderr, file=sys.stderr)
        return None, elapsed
    return json.loads(out.stdout), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("geometries", nargs="*", default=DEFAULT)
    parser.add_argument("--variant", default="v1")
    parser.add_argument("--budget", type=float, default=600.0)
    parser.add_argument("--depth", type=int, default=4)
    args = parser.parse_args()

    table = Table(title=f"pcpu-verify prove --variant {args.variant} --depth {args.depth}")
    for col in ("geometry", "bits", "obligations", "wall", "x first", "mean/obl", "max/obl", "slowest", "verdicts"):
        table.add_column(col, justify="left" if col in ("geometry", "slowest", "verdicts") else "right")
    first: float | None = None
    largest = None
    for geometry in args.geometries:
        pages, bits = (int(x) for x in geometry.split("x"))
        data, wall = run_one(args.variant, geometry, args.depth, args.budget)
        if data is None:
            table.add_row(geometry, str(pages * bits), "-", f"> {args.budget:.0f}s", "-", "-", "-", "over budget", "-")
            break
        results = data["results"]
        times = [r["seconds"] for r in results]
        slowest = max(results, key=lambda r: r["seconds"])
        verdicts: dict[str, int] = {}
        for r in results:
            verdicts[r["result"]] = verdicts.get(r["result"], 0) + 1
        first = first or wall
        largest = geometry
        table.add_row(
            geometry,
            str(pages * bits),
            str(len(results)),
            f"{wall:.1f}s",
            f"{wall / first:.1f}",
            f"{sum(times) / len(times):.2f}s",
            f"{max(times):.2f}s",
            f"{slowest['invariant']}/{slowest['op']}",
            " ".join(f"{k}:{v}" for k, v in sorted(verdicts.items())),
        )
    Console().print(table)
    print(f"largest geometry whose whole suite finished within {args.budget:.0f}s: {largest}")


if __name__ == "__main__":
    main()
