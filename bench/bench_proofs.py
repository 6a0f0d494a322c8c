"""Benchmark: proof time per obligation and per suite, geometry by geometry and solver setting by setting.

    python bench/bench_proofs.py [--variant fixed] [--budget 600] [--depth 4]
                                 [--settings z3:1,portfolio:1,portfolio:0] [GEOMETRY ...]
    python bench/bench_proofs.py --blocks 64,256,1024 --settings bitwuzla:1 --budget 600
                                 [--queries instantiated,full] [--op ROLE ...]

Each geometry's suite (conformance, initiation, consecution, bounded model
checking; the first-chunk layout proofs are geometry-free and left out) runs
in a child process that is killed at the budget.  The child reports every
obligation as it finishes, so a suite cut short still shows how far it got
and what each obligation it reached cost.  The first table has one row per
geometry, the second one row per obligation (seconds, geometry by geometry).
The last line names the largest geometry whose whole suite finished in the
budget.  Times are wall-clock on this machine; compare geometries by their
ratio to the first.

A setting is ``SOLVER:JOBS[:noslice]`` (``--solver`` and ``--jobs`` of
``prove``, 0 for one per core; ``noslice``: every consecution query with the
whole strengthening, as before slicing).  Every geometry runs under every
setting, each run cut at ``--budget`` seconds and reported as "> N s"; the
solver table gives each run's wall time and its ratio to the first
setting's (``z3:1``, Z3 alone and one query at a time: the deterministic
mode), says whether the verdicts of the rows both finished agree, and ends
with the issue's goals (2x8 within 10 s, 4x64 within 10 minutes).

``--blocks`` times the block contracts instead, one child process per width
and per way of asking (``--queries``: ``instantiated``, what ``prove`` does,
the block invariant's universal claim stated at chosen positions first and
the refresh's longest-run circuit cut where its lemma is proved, and
``full``, the whole invariant and circuit bit-blasted); with both, each
width gets the ratio of the first to the second.  The lemma's own time is
printed once, and counted in the first row that cuts the circuit.
``--op`` keeps only the named functions or roles (``prove``'s ``--op``).
With a variant of 5.2's blocks (``--variant mainline-fixed``) the rows are
``proofs/blocks/release_contracts.py``'s (``instantiated``: the weaker
queries of ``release_instances.py`` first).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import signal
import time
from dataclasses import dataclass, field, replace

from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.results import Result
from pcpuverify.proofs.solver import SolverOptions
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from rich.console import Console
from rich.table import Table

DEFAULT = ["2x8", "4x8", "2x32", "4x32", "4x64"]
SETTINGS = ["z3:1", "portfolio:1", "portfolio:0"]
GOALS = {"2x8": 10.0, "4x64": 600.0}  # issue 12: seconds for the whole suite
DONE = "done"


@dataclass
class Run:
    geometry: str
    setting: str = SETTINGS[0]
    results: list[Result] = field(default_factory=list)
    wall: float = 0.0
    finished: bool = False


def _child(variant: str, geometry: str, options: SuiteOptions, out: mp.Queue) -> None:
    os.setpgrp()  # its solver workers join its group, and go with it at the budget
    run_suite(variant, Geometry.parse(geometry), options, progress=out.put)
    out.put(DONE)


def run_one(variant: str, geometry: str, options: SuiteOptions, budget: float, setting: str = SETTINGS[0]) -> Run:
    """The suite for one geometry, every obligation it finished within ``budget`` seconds."""
    run = Run(geometry, setting)
    out: mp.Queue = mp.Queue()
    # not a daemon: a daemon may not start the portfolio's workers; killed with its group below instead
    child = mp.Process(target=_child, args=(variant, geometry, options, out))
    start = time.perf_counter()
    child.start()
    try:
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
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:  # gone already, or killed before it made its group
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


def _setting(spec: str, depth: int) -> SuiteOptions:
    """``SOLVER:JOBS[:noslice]`` as suite options; a bad one raises ValueError."""
    parts = spec.split(":")
    solver, jobs, rest = parts[0], parts[1] if len(parts) > 1 else "1", parts[2:]
    if rest not in ([], ["noslice"]):
        raise ValueError(f"bad setting {spec!r}: SOLVER:JOBS or SOLVER:JOBS:noslice")
    workers = int(jobs) or os.cpu_count() or 1
    return SuiteOptions(solver=SolverOptions(solver=solver, jobs=workers), depth=depth, slicing=not rest)


def _verdicts(run: Run) -> dict[tuple[str, str], str]:
    return {(r.invariant, r.op): r.verdict.value for r in run.results}


def solver_table(variant: str, depth: int, budget: float, runs: list[Run], settings: list[str]) -> Table:
    """Wall time per geometry and setting, its ratio to the first setting, and whether the verdicts agree."""
    table = Table(title=f"fixed-suite wall time per solver setting (variant {variant}, depth {depth},"
                        f" budget {budget:.0f}s per run; ratio to {settings[0]})")
    table.add_column("geometry")
    for setting in settings:
        table.add_column(setting, justify="right")
    for geometry in dict.fromkeys(r.geometry for r in runs):
        by_setting = {r.setting: r for r in runs if r.geometry == geometry}
        base = by_setting[settings[0]]
        cells = []
        for setting in settings:
            run = by_setting[setting]
            wall = f"{run.wall:.1f}s" if run.finished else f"> {budget:.0f}s ({len(run.results)} rows)"
            ratio = f" x{run.wall / base.wall:.2f}" if run.finished and base.finished else ""
            theirs, ours = _verdicts(base), _verdicts(run)
            both = theirs.keys() & ours.keys()
            differ = [k for k in both if theirs[k] != ours[k]]
            agree = f" {len(differ)} DIFFER" if differ else ""
            cells.append(wall + ratio + agree)
        table.add_row(geometry, *cells)
    return table


def goals(runs: list[Run], budget: float) -> list[str]:
    """One line per goal of the issue: which settings met it, with their times."""
    lines = []
    for geometry, seconds in GOALS.items():
        mine = [r for r in runs if r.geometry == geometry]
        if not mine:
            continue
        met = [f"{r.setting} {r.wall:.1f}s" for r in mine if r.finished and r.wall <= seconds]
        lines.append(f"goal: {geometry} whole suite within {seconds:.0f}s: "
                     + (", ".join(met) if met else f"not met by any setting (budget {budget:.0f}s)"))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("geometries", nargs="*", default=DEFAULT)
    parser.add_argument("--variant", default="fixed")
    parser.add_argument("--budget", "--timeout", type=float, default=600.0,
                        help="seconds per run (one geometry's whole suite under one setting); a run cut there is"
                             " reported as '> N s' with the rows it finished")
    parser.add_argument("--depth", type=int, default=SuiteOptions.depth)
    parser.add_argument("--settings", type=lambda v: v.split(","), default=SETTINGS, metavar="SOLVER:JOBS,...",
                        help="solver settings to compare; the first is the baseline of the ratios")
    parser.add_argument("--blocks", type=lambda v: [int(b) for b in v.split(",")], default=None, metavar="64,256,1024",
                        help="only the block-contract table at these bits per block (--settings' first solver,"
                             " --budget seconds per query)")
    parser.add_argument("--queries", type=lambda v: v.split(","), default=None,
                        metavar="instantiated,full", help="with --blocks: how each contract is asked"
                                                          " (default: instantiated)")
    parser.add_argument("--op", action="append", default=None, metavar="ROLE",
                        help="with --blocks: only these functions or roles (repeatable)")
    args = parser.parse_args()
    if args.blocks:
        if args.queries is not None and not set(args.queries) <= set(QUERY_MODES):
            parser.error(f"--queries takes {' and '.join(QUERY_MODES)}")
        solver = replace(_setting(args.settings[0], args.depth).solver, timeout=args.budget)
        console = Console(width=200, emoji=False)  # a role "...:end" before ": PROVED" is not the :end: emoji
        ops = frozenset(args.op) if args.op else None
        console.print(block_contract_table(args.variant, args.blocks, solver, console, args.queries, ops))
        return
    for g in args.geometries:
        Geometry.parse(g)  # a bad name fails before any suite runs
    try:
        settings = {spec: _setting(spec, args.depth) for spec in args.settings}  # a bad setting fails here too
    except ValueError as e:
        parser.error(str(e))

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a file or a pipe: full names, one line per row
    runs: list[Run] = []
    for geometry in args.geometries:
        for spec, suite_options in settings.items():
            run = run_one(args.variant, geometry, suite_options, args.budget, spec)
            console.print(f"{geometry} {spec}: {len(run.results)} obligations in {run.wall:.1f}s"
                          + ("" if run.finished else " (cut at the budget)"), f"load {os.getloadavg()[0]:.2f}")
            runs.append(run)
    console.print(solver_table(args.variant, args.depth, args.budget, runs, args.settings))
    for line in goals(runs, args.budget):
        console.print(line)
    baseline = [run for run in runs if run.setting == args.settings[0]]
    options = settings[args.settings[0]]
    console.print(geometry_table(args.variant, options, args.budget, baseline))
    console.print(obligation_table(baseline))
    fitting = [run for run in baseline if run.finished]
    largest = max(fitting, key=lambda run: (_bits(run.geometry), run.geometry), default=None)
    console.print(f"largest geometry whose whole suite finished within {args.budget:.0f}s: "
                  f"{largest.geometry + f' ({_bits(largest.geometry)} bits)' if largest else 'none'}")


QUERY_MODES = ("instantiated", "full")


def _block_child(variant: str, bits: int, solver: SolverOptions, instantiate: bool, ops: frozenset[str] | None,
                 out: mp.Queue) -> None:
    from pcpuverify.proofs.blocks.prove import run_block_suite
    from pcpuverify.proofs.blocks.release_contracts import run_release_block_suite
    from pcpuverify.proofs.blocks.suite import scan_hint_blocks

    if scan_hint_blocks(variant):
        run_release_block_suite(variant, bits, solver, progress=out.put, ops=ops, instantiate=instantiate)
    else:
        run_block_suite(variant, bits, solver, ops=ops, progress=out.put, instantiate=instantiate)
    out.put(DONE)


def _next_contract(out: mp.Queue, child: mp.Process) -> object:
    """The child's next row, or DONE once it has died without saying so (a crash: no row waits forever)."""
    while True:
        try:
            return out.get(timeout=1.0)
        except queue.Empty:
            if not child.is_alive() and out.empty():
                return DONE


def block_contract_table(variant: str, widths: list[int], solver: SolverOptions, console: Console,
                         modes: list[str] | None, ops: frozenset[str] | None) -> Table:
    """Issue 12, part 4: every block contract (``prove --geometry blockB``) at each width and in each way of
    asking it (``modes``; None: ``instantiated``), one child process each,
    each query bounded by the solver's timeout.  A cell is the verdict, its seconds and who answered; with two
    ways, the ratio of the first's seconds to the second's."""
    from pcpuverify.proofs.blocks.labels import BlockLabel
    from pcpuverify.proofs.blocks.suite import label_rows

    if modes is None:
        modes = ["instantiated"]
    cells: dict[tuple[str, str, int, str], Result] = {}
    for bits in widths:
        for mode in modes:
            out: mp.Queue = mp.Queue()
            child = mp.Process(target=_block_child, args=(variant, bits, solver, mode == "instantiated", ops, out))
            start = time.perf_counter()
            child.start()
            count, lemma_shown = 0, False
            while (r := _next_contract(out, child)) != DONE:
                cells[(r.invariant, r.op, bits, mode)] = r
                count += 1
                lemma = r.extra.get("run_lemma")
                if isinstance(lemma, dict) and not lemma_shown:
                    lemma_shown = True
                    console.print(f"block{bits} {mode}: the longest-run lemma {lemma['status']},"
                                  f" {lemma['queries']} queries in {lemma['seconds']:.1f}s")
                console.print(f"block{bits} {mode} {r.invariant} / {r.op}: {r.verdict.value} {r.seconds:.1f}s"
                              f" ({r.extra.get('solver', '-')}; {r.extra.get('queries', 'full')}),"
                              f" load {os.getloadavg()[0]:.2f}")
            child.join()
            ended = "" if child.exitcode == 0 else f" (the child died, exit code {child.exitcode})"
            console.print(f"block{bits} {mode}: {time.perf_counter() - start:.1f}s for {count} contracts{ended}")
    table = Table(title=f"{variant}: block contracts, solver {solver.solver}, {solver.timeout:.0f}s per query")
    table.add_column("contract")
    table.add_column("function")
    for bits in widths:
        for mode in modes:
            table.add_column(f"block{bits} {mode}", justify="right")
        if len(modes) == 2:
            table.add_column(f"block{bits} ratio", justify="right")
    for name, op in label_rows(BlockLabel(widths[0], None), variant):
        row = []
        for bits in widths:
            found = [cells.get((name, op, bits, mode)) for mode in modes]
            row += ["-" if r is None else f"{r.verdict.value} {r.seconds:.1f}s {r.extra.get('solver', '')}"
                    for r in found]
            if len(modes) == 2:
                a, b = found
                row.append(f"x{a.seconds / b.seconds:.2f}" if a and b and b.seconds > 0 else "-")
        if any(cell != "-" for cell in row):
            table.add_row(name, op, *row)
    return table


def _bits(geometry: str) -> int:
    pages, bits = (int(x) for x in geometry.split("x"))
    return pages * bits


if __name__ == "__main__":
    main()
