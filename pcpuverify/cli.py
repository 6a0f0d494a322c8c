"""The ``pcpu-verify`` command line: thin wrappers that load input, run the layers, and print through one path."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from pcpuverify.draw import draw_state
from pcpuverify.invariants.base import Violation
from pcpuverify.invariants.check import UnknownInvariant, invariant
from pcpuverify.invariants.check import replay as replay_trace
from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.geometry import Geometry, GeometryError
from pcpuverify.model.ops import op_to_json
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.trace import TraceError, load_trace, write_atomically
from pcpuverify.model.variants import VARIANTS, UnknownVariant
from pcpuverify.proofs.obligations import OPS
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import SolverOptions
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.report import print_results, results_json, wide_console

EXIT_OK = 0
EXIT_VIOLATION = 1  # a claim of the input did not hold (e.g. a trace's "violates")
EXIT_USAGE = 2  # bad usage or input
EXIT_UNKNOWN = 3  # some obligation is UNKNOWN: the solver gave no answer, nothing is decided
EXIT_TOOL_FAILURE = 4  # VACUOUS, SPURIOUS or NONCONFORMANT: pcpu-verify itself is wrong somewhere

DEFAULT_GEOMETRIES = ("1x8", "2x8", "3x8", "2x16")

USER_ERRORS = (TraceError, OpError, LayoutError, GeometryError, UnknownVariant, UnknownInvariant)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn bad input into one line on stderr and exit code 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as e:
            click.echo(f"pcpu-verify: error: {e}", err=True)
            sys.exit(EXIT_USAGE)

    return cast(F, wrapper)


@click.group()
@click.version_option(package_name="pcpu-verify")
def main() -> None:
    """Prove or refute the invariants of the percpu bitmap allocator (mm/percpu.c, July 2017 series)."""


def _violation_json(v: Violation) -> dict[str, str]:
    return {"invariant": v.invariant, "chunk": v.chunk, "field": v.field, "message": v.message}


def _highlight(violations: tuple[Violation, ...] | list[Violation]) -> dict[str, set[str]]:
    hot: dict[str, set[str]] = {}
    for v in violations:
        hot.setdefault(v.chunk, set()).add(v.field)
    return hot


@main.command()
@click.argument("trace_file")
@click.option("--json", "as_json", is_flag=True, help="Print the state after every step as JSON.")
@user_errors
def replay(trace_file: str, as_json: bool) -> None:
    """Replay TRACE_FILE on the reference and show the state after every step."""
    trace = load_trace(trace_file)
    if trace.violates is not None:
        try:
            invariant(trace.violates)
        except UnknownInvariant as e:
            raise TraceError(f"{trace_file}: 'violates': {e}") from None
    try:
        initial_state = Reference(trace.variant, trace.geometry, trace.init).dump()
        initial, steps = replay_trace(trace)
    except (OpError, LayoutError) as e:
        raise TraceError(f"{trace_file}: {e}") from None
    found = {v.invariant for v in initial} | {v.invariant for s in steps for v in s.violations}

    if as_json:
        click.echo(
            json.dumps(
                {
                    "trace": trace.to_json(),
                    "initial": {"state": initial_state, "violations": [_violation_json(v) for v in initial]},
                    "steps": [
                        {
                            "index": s.index,
                            "op": op_to_json(s.result.op),
                            "bit_off": s.result.bit_off,
                            "state": s.state,
                            "violations": [_violation_json(v) for v in s.violations],
                        }
                        for s in steps
                    ],
                },
                indent=2,
            )
        )
    else:
        console = Console(highlight=False, soft_wrap=True)
        B = trace.geometry.block_bits
        console.print(f"[bold]{trace_file}[/]: variant {trace.variant}, {len(trace.ops)} ops")
        console.print("initial state")
        console.print(draw_state(initial_state, B, _highlight(initial)))
        for s in steps:
            ret = ""
            if s.result.bit_off is not None:
                ret = f" -> bit_off {s.result.bit_off}"
            elif op_to_json(s.result.op)["op"] == "alloc":
                ret = " -> failed"
            console.print(f"[bold]step {s.index}[/]: {s.result.op.describe()}{ret}")
            console.print(draw_state(s.state, B, _highlight(s.violations)))
            for v in s.violations:
                console.print(f"  [bold red]VIOLATED[/] {v.describe()}")
    if trace.violates is not None and trace.violates not in found:
        click.echo(f"pcpu-verify: trace claims to violate {trace.violates!r} but the replay does not", err=True)
        sys.exit(EXIT_VIOLATION)


def _geometry(spec: str) -> Geometry:
    try:
        return Geometry.parse(spec)
    except GeometryError as e:
        raise click.BadParameter(str(e)) from None


@main.command()
@click.option("--variant", "variants", multiple=True, type=click.Choice(sorted(VARIANTS)),
              help="Variant to prove (repeatable; default: all).")
@click.option("--geometry", "geometries", multiple=True, metavar="PAGESxBITS",
              help=f"Blocks x bits per block, all pages populated at first (repeatable; default: {' '.join(DEFAULT_GEOMETRIES)}).")
@click.option("--invariant", "invariants", multiple=True, help="Only this invariant (repeatable).")
@click.option("--op", "ops", multiple=True, type=click.Choice(OPS), help="Only this operation (repeatable).")
@click.option("--timeout", type=float, default=SolverOptions.timeout, show_default=True,
              help="Wall-clock seconds per solver query (a safety net; verdicts are bounded by --rlimit).")
@click.option("--rlimit", type=int, default=SolverOptions.rlimit, show_default=True,
              help="Z3 resource limit per query: the deterministic bound.")
@click.option("--seed", type=int, default=0, show_default=True, help="Z3 random seed and conformance walk seed.")
@click.option("--depth", type=int, default=SuiteOptions.depth, show_default=True,
              help="Bounded model checking depth (operations from a new chunk).")
@click.option("--traces", "traces_dir", type=click.Path(file_okay=False), default=None,
              help="Write the trace of every VIOLATED obligation into this directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@user_errors
def prove(variants: tuple[str, ...], geometries: tuple[str, ...], invariants: tuple[str, ...], ops: tuple[str, ...],
          timeout: float, rlimit: int, seed: int, depth: int, traces_dir: str | None, as_json: bool) -> None:
    """Prove or refute every invariant for every operation on small geometries.

    One row per obligation: PROVED (unsat, assumptions satisfiable), VIOLATED
    (with a trace that replays on the reference), NOT-INDUCTIVE (counterexample
    to induction, nothing reachable within --depth), UNKNOWN (never a pass).
    """
    for name in invariants:
        invariant(name)
    if depth < 1:
        raise click.BadParameter("--depth must be at least 1")
    geos = [_geometry(g) for g in geometries or DEFAULT_GEOMETRIES]
    chosen = list(variants) or sorted(VARIANTS)
    options = SuiteOptions(solver=SolverOptions(rlimit=rlimit, seed=seed, timeout=timeout), depth=depth)
    err = Console(stderr=True)
    results: list[Result] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json or not err.is_terminal) as progress:
        for variant in chosen:
            for geometry in geos:
                task = progress.add_task(f"{variant} {geometry.name}", total=None)

                def show(r: Result, task: TaskID = task, label: str = f"{variant} {geometry.name}") -> None:
                    progress.update(task, description=f"{label}: {r.invariant} / {r.op} {r.verdict.value}")

                results += run_suite(variant, geometry, options, set(invariants) or None, set(ops) or None, show)
                progress.remove_task(task)
    if traces_dir is not None:
        _save_traces(results, Path(traces_dir))
    if as_json:
        click.echo(results_json(results, {"options": options.to_json()}))
    else:
        print_results(wide_console(), results)
    if any(r.verdict in (Verdict.VACUOUS, Verdict.SPURIOUS, Verdict.NONCONFORMANT) for r in results):
        sys.exit(EXIT_TOOL_FAILURE)
    if any(r.verdict is Verdict.UNKNOWN for r in results):
        sys.exit(EXIT_UNKNOWN)


def _save_traces(results: list[Result], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for r in results:
        if r.verdict is Verdict.VIOLATED and r.trace is not None:
            name = f"{r.variant}__{r.geometry}__{r.invariant}__{r.op}.json"
            write_atomically(directory / name, json.dumps(r.trace, indent=2) + "\n")
