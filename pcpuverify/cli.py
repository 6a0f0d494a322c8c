"""The ``pcpu-verify`` command line: thin wrappers that load input, run the layers, and print through one path."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from pcpuverify.check import CheckError, find_config, load_config
from pcpuverify.check_cli import check
from pcpuverify.counterexamples.minimize import minimize as minimize_trace
from pcpuverify.counterexamples.regression import regression_test
from pcpuverify.counterexamples.witness import load_witnesses
from pcpuverify.draw import draw_fresh_scans, draw_state
from pcpuverify.invariants.base import Violation
from pcpuverify.invariants.check import Replayed, UnknownInvariant, invariant
from pcpuverify.invariants.check import replay as replay_trace
from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.geometry import Geometry, GeometryError
from pcpuverify.model.ops import FirstChunkInit, op_to_json
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.trace import Trace, TraceError, load_trace, write_atomically
from pcpuverify.model.variants import VARIANTS, UnknownVariant
from pcpuverify.proofs.layout import LAYOUT_PROPERTIES, run_layout_suite
from pcpuverify.proofs.obligations import OPS
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import SOLVER_CHOICES, SolverOptions
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.report import print_results, results_json, wide_console
from pcpuverify.symbolic.subjects import SubjectError

EXIT_OK = 0
EXIT_VIOLATION = 1  # a claim of the input did not hold (e.g. a trace's "violates")
EXIT_USAGE = 2  # bad usage or input
EXIT_UNKNOWN = 3  # some obligation is UNKNOWN: the solver gave no answer, nothing is decided
EXIT_TOOL_FAILURE = 4  # VACUOUS, SPURIOUS or NONCONFORMANT: pcpu-verify itself is wrong somewhere

DEFAULT_GEOMETRIES = ("1x8", "2x8", "3x8", "2x16")


class OutputError(ValueError):
    """A file pcpu-verify was asked to write and cannot."""


USER_ERRORS = (TraceError, OpError, LayoutError, GeometryError, UnknownVariant, UnknownInvariant, OutputError,
               SubjectError)

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


def _write(path: str | Path, text: str) -> None:
    try:
        write_atomically(path, text)
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None


@dataclass(frozen=True)
class Replay:
    """A trace replayed on the reference: the initial state and its violations, then every step."""

    trace: Trace
    initial_state: dict[str, object]
    initial: list[Violation]
    steps: list[Replayed]

    @property
    def found(self) -> set[str]:
        return {v.invariant for v in self.initial} | {v.invariant for s in self.steps for v in s.violations}

    def first(self, name: str) -> int | None:
        """The step that first breaks ``name`` (-1: the initial state), as ``first_violation`` says."""
        if any(v.invariant == name for v in self.initial):
            return -1
        return next((s.index for s in self.steps if any(v.invariant == name for v in s.violations)), None)

    def first_broken(self) -> str | None:
        for violations in [self.initial, *(s.violations for s in self.steps)]:
            if violations:
                return violations[0].invariant
        return None


def _check_claim(trace: Trace, trace_file: str) -> None:
    if trace.violates is not None:
        try:
            invariant(trace.violates)
        except UnknownInvariant as e:
            raise TraceError(f"{trace_file}: 'violates': {e}") from None


def _replay(trace: Trace, trace_file: str) -> Replay:
    try:
        initial_state = Reference(trace.variant, trace.geometry, trace.init).dump()
        initial, steps = replay_trace(trace)
    except (OpError, LayoutError) as e:
        raise TraceError(f"{trace_file}: {e}") from None
    return Replay(trace, initial_state, initial, steps)


def _replay_json(r: Replay) -> dict[str, Any]:
    return {
        "trace": r.trace.to_json(),
        "initial": {"state": r.initial_state, "violations": [_violation_json(v) for v in r.initial]},
        "steps": [
            {
                "index": s.index,
                "op": op_to_json(s.result.op),
                "bit_off": s.result.bit_off,
                "state": s.state,
                "violations": [_violation_json(v) for v in s.violations],
            }
            for s in r.steps
        ],
    }


def _draw_replay(console: Console, r: Replay, title: str) -> None:
    """The step-by-step picture: each state, each broken invariant, each wrong field against a fresh scan."""
    B = r.trace.geometry.block_bits
    console.print(f"[bold]{escape(title)}[/]: variant {r.trace.variant}, {len(r.trace.ops)} ops")
    console.print("initial state")
    console.print(draw_state(r.initial_state, B, _highlight(r.initial)))
    _draw_violations(console, r.initial_state, r.initial, B)
    for s in r.steps:
        ret = ""
        if s.result.bit_off is not None:
            ret = f" -> bit_off {s.result.bit_off}"
        elif op_to_json(s.result.op)["op"] == "alloc":
            ret = " -> failed"
        console.print(f"[bold]step {s.index}[/]: {s.result.op.describe()}{ret}")
        console.print(draw_state(s.state, B, _highlight(s.violations)))
        _draw_violations(console, s.state, list(s.violations), B)


def _draw_violations(console: Console, state: dict[str, Any], violations: list[Violation], block_bits: int) -> None:
    for v in violations:
        console.print(f"  [bold red]VIOLATED[/] {escape(v.describe())}")
    if violations:
        console.print(draw_fresh_scans(state, [(v.chunk, v.field) for v in violations], block_bits), end="")


def _html(r: Replay, title: str) -> str:
    """The same drawing as a self-contained HTML page: inline styles, no external assets."""
    console = Console(record=True, file=io.StringIO(), width=200, highlight=False, soft_wrap=True,
                      color_system="truecolor", force_terminal=True)
    _draw_replay(console, r, title)
    return console.export_html(inline_styles=True)


@main.command()
@click.argument("trace_file")
@click.option("--json", "as_json", is_flag=True, help="Print the state after every step as JSON.")
@click.option("--html", "html_file", metavar="FILE", default=None,
              help="Also write the step-by-step drawing as a self-contained HTML page (for a mail or a review).")
@click.option("--pytest", "pytest_file", metavar="FILE", default=None,
              help="Write a regression test: the violation at the same step here, none on variant 'fixed'.")
@user_errors
def replay(trace_file: str, as_json: bool, html_file: str | None, pytest_file: str | None) -> None:
    """Replay TRACE_FILE on the reference and show the state after every step.

    Under a step that breaks an invariant, each wrong field is shown next
    to the value a fresh scan of the bitmap gives.
    """
    trace = load_trace(trace_file)
    _check_claim(trace, trace_file)
    r = _replay(trace, trace_file)
    claim_fails = trace.violates is not None and trace.violates not in r.found
    regression: str | None = None
    if pytest_file is not None and not claim_fails:
        name = trace.violates or r.first_broken()
        if name is None:
            click.echo(f"pcpu-verify: {trace_file}: the replay violates no invariant: no regression test to write",
                       err=True)
            sys.exit(EXIT_VIOLATION)
        step = r.first(name)
        assert step is not None
        regression = regression_test(trace, name, step, trace_file)
    # every file is written before anything is printed: an unwritable path is one error line, nothing else
    if html_file is not None:
        _write(html_file, _html(r, trace_file))
    if regression is not None and pytest_file is not None:
        _write(pytest_file, regression)

    if as_json:
        click.echo(json.dumps(_replay_json(r), indent=2))
    else:
        _draw_replay(Console(highlight=False, soft_wrap=True), r, trace_file)
    if claim_fails:
        click.echo(f"pcpu-verify: trace claims to violate {trace.violates!r} but the replay does not", err=True)
        sys.exit(EXIT_VIOLATION)


@main.command()
@click.argument("trace_file")
@click.option("-o", "--output", "out_file", metavar="OUT", default=None,
              help="Where to write the minimised trace (default: TRACE_FILE with suffix .min.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the lengths and the minimised trace's replay as JSON.")
@user_errors
def minimize(trace_file: str, out_file: str | None, as_json: bool) -> None:
    """Reduce the counterexample TRACE_FILE to a 1-minimal trace breaking the same invariant.

    Fewer operations (ddmin), then smaller arguments, then a smaller chunk,
    to a fixpoint; every candidate is replayed on the reference.  The result
    is written (never over TRACE_FILE unless -o names it), replayed and
    drawn.  Exit 0: minimised; 1: TRACE_FILE breaks no invariant (or not the
    one it claims); 2: bad input.
    """
    trace = load_trace(trace_file)
    _check_claim(trace, trace_file)
    original = _replay(trace, trace_file)  # bad input is reported here, before any work
    name = trace.violates or original.first_broken()
    if name is None or original.first(name) is None:
        what = "violates no invariant" if name is None else f"does not violate {name!r}"
        click.echo(f"pcpu-verify: {trace_file}: the replay {what}: nothing to minimise", err=True)
        sys.exit(EXIT_VIOLATION)
    minimized = minimize_trace(Trace(trace.variant, trace.geometry, trace.init, trace.ops, name))
    out = Path(out_file) if out_file is not None else Path(trace_file).with_suffix(".min.json")
    _write(out, json.dumps(minimized.to_json(), indent=2) + "\n")
    result = _replay(minimized, str(out))

    if as_json:
        click.echo(json.dumps({
            "input": trace_file,
            "output": str(out),
            "invariant": name,
            "original_ops": len(trace.ops),
            "minimized_ops": len(minimized.ops),
            "original_geometry": trace.geometry.to_json(),
            "minimized_geometry": minimized.geometry.to_json(),
            "replay": _replay_json(result),
        }, indent=2))
    else:
        console = Console(highlight=False, soft_wrap=True)
        console.print(f"{escape(trace_file)}: {len(trace.ops)} ops -> {len(minimized.ops)} ops,"
                      f" geometry {_geometry_name(trace)} -> {_geometry_name(minimized)}, still violates {name}")
        console.print(f"wrote {escape(str(out))}")
        _draw_replay(console, result, str(out))
    if result.first(name) is None:  # minimize only returns traces that break it: this is our bug
        click.echo(f"pcpu-verify: internal error: the minimised trace does not violate {name!r}", err=True)
        sys.exit(EXIT_TOOL_FAILURE)


def _geometry_name(trace: Trace) -> str:
    g = trace.geometry
    if isinstance(trace.init, FirstChunkInit):
        i = trace.init
        return f"first chunk {i.static_size}+{i.reserved_size}+{i.dyn_size} bytes, {g.block_bits} bits per page"
    return f"{g.nr_pages}x{g.block_bits} (populated {list(g.populated)})"


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
@click.option("--solver", type=click.Choice(SOLVER_CHOICES), default="portfolio", show_default=True,
              help="Who answers each query.  portfolio: Bitwuzla (fastest here, bench/bench_proofs.py), then Z3"
                   " and cvc5 for its unknowns.  Only z3 and cvc5 are deterministic (--rlimit); with bitwuzla"
                   " (--timeout only) or portfolio, an UNKNOWN can differ between machines, a verdict cannot.")
@click.option("--depth", type=int, default=SuiteOptions.depth, show_default=True,
              help="Bounded model checking depth (operations from a new chunk).")
@click.option("--traces", "traces_dir", type=click.Path(file_okay=False), default=None,
              help="Write the trace of every VIOLATED obligation into this directory.")
@click.option("--witnesses", "witness_paths", multiple=True, type=click.Path(exists=True),
              help="Violating traces (files or directories of *.json) to carry to each obligation that bounded"
                   " model checking leaves NOT-INDUCTIVE: one that replays there makes it VIOLATED (repeatable;"
                   " default: the `traces` of the project's [tool.pcpu-verify] config, if run inside it).")
@click.option("--no-witnesses", is_flag=True, help="Carry no traces, not even the project's.")
@click.option("--layout/--no-layout", default=True, show_default=True,
              help="Also prove the first-chunk layout arithmetic at 64 bits (PAGE_SIZE 4096; skipped with --op).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@user_errors
def prove(variants: tuple[str, ...], geometries: tuple[str, ...], invariants: tuple[str, ...], ops: tuple[str, ...],
          timeout: float, rlimit: int, seed: int, solver: str, depth: int, traces_dir: str | None,
          witness_paths: tuple[str, ...], no_witnesses: bool, layout: bool, as_json: bool) -> None:
    """Prove or refute every invariant for every operation on small geometries.

    One row per obligation: PROVED (unsat, assumptions satisfiable), VIOLATED
    (with a trace that replays on the reference), NOT-INDUCTIVE (counterexample
    to induction, nothing reachable within --depth), UNKNOWN (never a pass).
    """
    for name in invariants:
        if name not in LAYOUT_PROPERTIES:
            invariant(name)
    if depth < 1:
        raise click.BadParameter("--depth must be at least 1")
    geos = [_geometry(g) for g in geometries or DEFAULT_GEOMETRIES]
    if no_witnesses and witness_paths:
        raise click.UsageError("--witnesses and --no-witnesses exclude each other")
    witnesses = [] if no_witnesses else load_witnesses([Path(p) for p in witness_paths] or _project_traces())
    chosen = list(variants) or sorted(VARIANTS)
    options = SuiteOptions(solver=SolverOptions(rlimit=rlimit, seed=seed, timeout=timeout, solver=solver),
                           depth=depth)
    err = Console(stderr=True)
    results: list[Result] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json or not err.is_terminal) as progress:
        for variant in chosen:
            for geometry in geos:
                task = progress.add_task(f"{variant} {geometry.name}", total=None)

                def show(r: Result, task: TaskID = task, label: str = f"{variant} {geometry.name}") -> None:
                    progress.update(task, description=f"{label}: {r.invariant} / {r.op} {r.verdict.value}")

                wanted = {n for n in invariants if n not in LAYOUT_PROPERTIES} if invariants else None
                if wanted != set():
                    results += run_suite(variant, geometry, options, wanted, set(ops) or None, show, witnesses)
                progress.remove_task(task)
            if layout and not ops:
                task = progress.add_task(f"{variant} first-chunk layout at 64 bits", total=None)
                results += [r for r in run_layout_suite(4096, options.solver, variant=variant)
                            if not invariants or r.invariant in invariants]
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


def _project_traces() -> list[Path]:
    """The regression trace directories of the [tool.pcpu-verify] config at or above the working directory."""
    try:
        config_file = find_config(Path.cwd())
    except CheckError:  # not inside a project: no witnesses
        return []
    try:
        return [p for p in load_config(config_file).traces if p.is_dir()]
    except CheckError as e:
        raise click.UsageError(f"the witnesses come from the project's config: {e}") from None


def _save_traces(results: list[Result], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for r in results:
        if r.verdict is Verdict.VIOLATED and r.trace is not None:
            name = f"{r.variant}__{r.geometry}__{r.invariant}__{r.op}.json"
            write_atomically(directory / name, json.dumps(r.trace, indent=2) + "\n")


main.add_command(check)
