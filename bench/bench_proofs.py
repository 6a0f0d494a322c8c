"""Benchmark: proof time per obligation and per suite, geometry by geometry, against a 10-minute limit.

    python bench/bench_proofs.py [--variant fixed] [--budget 600] [--depth 4] [GEOMETRY ...]

Each geometry's suite (conformance, initiation, consecution, bounded model
checking; the first-chunk layout proofs are geometry-free and left out) runs
in a child process that is killed at the budget.  The child reports every
obligation as it finishes, so a suite cut short still shows how far it got
and what each obligation it reached cost.  The first table has one row per
geometry, the second one row per obligation (seconds, geometry by geometry).
The last line names the largest geometry whose whole suite finished in the
budget.  Times are wall-clock on this machine; compare geometries by their
ratio to the first.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import time
from dataclasses import dataclass, field

from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.results import Result
from pcpuverify.proofs.solver import SolverOptions
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from rich.console import Console
from rich.table import Table

DEFAULT = ["2x8", "3x8", "2x16", "4x8", "2x32", "4x32", "4x64"]
DONE = "done"


@dataclass
class Run:
    geometry: str
    results: list[Result] = field(default_factory=list)
    wall: float = 0.0
    finished: bool = False


def _child(variant: str, geometry: str, options: SuiteOptions, out: mp.Queue) -> None:
    run_suite(variant, Geometry.parse(geometry), options, progress=out.put)
    out.put(DONE)


def run_one(variant: str, geometry: str, options: SuiteOptions, budget: float) -> Run:
    """The suite for one geometry, every obligation it finished within ``budget`` seconds."""
    run = Run(geometry)
    out: mp.Queue = mp.Queue()
    child = mp.Process(target=_child, args=(variant, geometry, options, out), daemon=True)
    start = time.perf_counter()
    child.start()
    while (left := budget - (time.perf_counter() - start)) > 0:
        try:
            item = out.get(timeout=min(left, 1.0))
        except queue.Empty:
            if not child.is_alive():
                break  # died without saying done: counted as not finished
            continue
        if item == DONE:
            run.finished = True
            break
        run.results.append(item)
    run.wall = time.perf_counter() - start
    child.kill()
    child.join()
    return run


def geometry_table(variant: str, options: SuiteOptions, budget: float, runs: list[Run]) -> Table:
    table = Table(title=f"pcpu-verify prove --variant {variant} --depth {options.depth} --no-layout")
    for col in ("geometry", "bits", "obligations", "wall", "x first", "mean/obl", "max/obl", "slowest", "verdicts"):
        table.add_column(col, justify="left" if col in ("geometry", "slowest", "verdicts") else "right")
    first = runs[0].wall if runs and runs[0].finished else None
    for run in runs:
        pages, bits = (int(x) for x in run.geometry.split("x"))
        times = [r.seconds for r in run.results]
        verdicts: dict[str, int] = {}
        for r in run.results:
            verdicts[r.verdict.value] = verdicts.get(r.verdict.value, 0) + 1
        slowest = max(run.results, key=lambda r: r.seconds, default=None)
        table.add_row(
            run.geometry,
            str(pages * bits),
            str(len(run.results)) + ("" if run.finished else " (cut)"),
            f"{run.wall:.1f}s" if run.finished else f"> {budget:.0f}s",
            f"{run.wall / first:.1f}" if first and run.finished else "-",
            f"{sum(times) / len(times):.2f}s" if times else "-",
            f"{max(times):.2f}s" if times else "-",
            f"{slowest.invariant}/{slowest.op}" if slowest else "-",
            " ".join(f"{k}:{v}" for k, v in sorted(verdicts.items())),
        )
    return table


def obligation_table(runs: list[Run]) -> Table:
    """Seconds per obligation, one column per geometry; '-' where the suite was cut before it."""
    table = Table(title="seconds per obligation (initiation, consecution, and any bounded check it needed)")
    table.add_column("invariant")
    table.add_column("op")
    for run in runs:
        table.add_column(run.geometry, justify="right")
    rows: dict[tuple[str, str], dict[str, Result]] = {}
    for run in runs:
        for r in run.results:
            rows.setdefault((r.invariant, r.op), {})[run.geometry] = r
    for (inv, op), by_geometry in rows.items():
        cells = []
        for run in runs:
            r = by_geometry.get(run.geometry)
            cells.append("-" if r is None else f"{r.seconds:.2f}" + ("" if r.verdict.value == "PROVED" else
                                                                    f" {r.verdict.value}"))
        table.add_row(inv, op, *cells)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("geometries", nargs="*", default=DEFAULT)
    parser.add_argument("--variant", default="fixed")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per geometry's whole suite")
    parser.add_argument("--depth", type=int, default=SuiteOptions.depth)
    args = parser.parse_args()
    for g in args.geometries:
        Geometry.parse(g)  # a bad name fails before any suite runs

    options = SuiteOptions(solver=SolverOptions(), depth=args.depth)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a file or a pipe: full names, one line per row
    runs: list[Run] = []
    for geometry in args.geometries:
        run = run_one(args.variant, geometry, options, args.budget)
        console.print(f"{geometry}: {len(run.results)} obligations in {run.wall:.1f}s"
                      + ("" if run.finished else " (cut at the budget)"))
        runs.append(run)
    console.print(geometry_table(args.variant, options, args.budget, runs))
    console.print(obligation_table(runs))
    fitting = [run for run in runs if run.finished]
    largest = max(fitting, key=lambda run: (_bits(run.geometry), run.geometry), default=None)
    console.print(f"largest geometry whose whole suite finished within {args.budget:.0f}s: "
                  f"{largest.geometry + f' ({_bits(largest.geometry)} bits)' if largest else 'none'}")


def _bits(geometry: str) -> int:
    pages, bits = (int(x) for x in geometry.split("x"))
    return pages * bits


if __name__ == "__main__":
    main()
