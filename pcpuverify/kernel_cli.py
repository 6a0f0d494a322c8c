"""``pcpu-verify explore`` and ``pcpu-verify diff``: search a kernel's own mm/percpu.c, compare it with a model variant.

``--source`` is a kernel tree (holding mm/percpu.c), a folder with
mm/percpu.c and mm/percpu-internal.h (or percpu.c and its header), or the
mm/percpu.c file itself.  Bad input -- a missing source, one that does not
compile (the first compiler error is shown), an unknown release layout, a
geometry the build cannot take -- is one line on stderr and exit 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from pcpuverify.counterexamples.kernel_diff import DiffReport
from pcpuverify.counterexamples.kernel_diff import diff as diff_runs
from pcpuverify.counterexamples.kernel_first_chunk import OP as FIRST_CHUNK_OP
from pcpuverify.counterexamples.kernel_first_chunk import FirstChunkRun, first_chunk_c
from pcpuverify.counterexamples.kernel_machine import hypothesis_c
from pcpuverify.counterexamples.kernel_search import C_TRACE_FORMAT, CSearch, CTrace, c_trace_file, explore_c, random_c
from pcpuverify.counterexamples.kernel_shrink import breaks_after, minimize_on_c, reproduce, shrink
from pcpuverify.counterexamples.minimize import NotACounterexample
from pcpuverify.exits import EXIT_TOOL_FAILURE, EXIT_USAGE, EXIT_VIOLATION
from pcpuverify.kernel.build import build
from pcpuverify.kernel.harness import KernelInitError, build_for
from pcpuverify.kernel.source import KernelSource, SourceError, load_source
from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.geometry import Geometry, GeometryError
from pcpuverify.model.ops import ChunkInit, FirstChunkInit
from pcpuverify.model.trace import (
    OutputError,
    TraceError,
    load_trace,
    make_directory,
    output_directory,
    read_input,
    write_output,
)
from pcpuverify.model.variants import VARIANTS

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(func: F) -> F:
    """Bad input: one line on stderr, exit 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (SourceError, GeometryError, TraceError, LayoutError, KernelInitError, OutputError) as e:
            click.echo(f"pcpu-verify: error: {e}", err=True)
            sys.exit(EXIT_USAGE)

    return cast(F, wrapper)


def _geometry(spec: str) -> Geometry:
    try:
        return Geometry.parse(spec)
    except GeometryError as e:
        raise GeometryError(f"--geometry: {e}") from None


def _source(path: str) -> KernelSource:
    source = load_source(path)
    _ = source.layout  # an unknown layout fails here, before any build
    return source


def c_trace_text(trace: CTrace, source: KernelSource) -> str:
    """A C trace file's text: the trace, and the source it replays on (path, hash, layout)."""
    return json.dumps(c_trace_file(trace.to_json(), source), indent=2) + "\n"


def _save_first_chunk(run: FirstChunkRun, source: KernelSource, geometry: Geometry, directory: Path) -> list[Path]:
    make_directory(directory)
    paths = []
    for name, trace in run.found.items():
        path = directory / f"{source.layout}__{geometry.block_bits}__{FIRST_CHUNK_OP}__{name}.json"
        write_output(path, c_trace_text(trace, source))
        paths.append(path)
    return paths


def _save(result: CSearch, source: KernelSource, directory: Path) -> list[Path]:
    make_directory(directory)
    paths = []
    for name, trace in result.found.items():
        path = directory / f"{result.layout}__{result.geometry.name}__{name}.json"
        write_output(path, c_trace_text(trace, source))
        paths.append(path)
    return paths


@click.command()
@click.option("--source", "source_path", required=True, metavar="PATH", help="Kernel tree, mm/ folder or mm/percpu.c.")
@click.option("--geometry", "geometry_spec", default="2x8", show_default=True, metavar="PAGESxBITS",
              help="Pages (one block each) x bits per block of the chunk the C is built for.")
@click.option("--depth", type=click.IntRange(min=0), default=3, show_default=True, help="Breadth-first search depth.")
@click.option("--examples", type=click.IntRange(min=0), default=100, show_default=True,
              help="Random walks, then as many Hypothesis stateful examples, after the search.")
@click.option("--length", type=click.IntRange(min=1), default=20, show_default=True, help="Operations per random walk.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random walks and the Hypothesis examples.")
@click.option("--traces", "traces_dir", type=click.Path(file_okay=False), default=None,
              help="Write each finding's trace here (JSON, replays on the C build).")
@click.option("--first-chunk", is_flag=True,
              help="Also set up the first chunk (4.14 on) of every layout its callers give, at the geometry's page,"
                   " and hold it to the invariants.")
@click.option("--json", "as_json", is_flag=True, help="Print the search's states, findings and traces as JSON.")
@_user_errors
def explore(source_path: str, geometry_spec: str, depth: int, examples: int, length: int, seed: int,
            traces_dir: str | None, first_chunk: bool, as_json: bool) -> None:
    """Search the C build of a mm/percpu.c: every reached state held to the invariants of its layout.

    Each finding's trace is shrunk on the C (counterexamples/kernel_shrink.py).
    With --first-chunk, then the first chunk (4.14 on): every layout its
    callers give, at the geometry's page, set up by the C and held to the
    state invariants.
    """
    source = _source(source_path)
    geometry = _geometry(geometry_spec)
    traces = output_directory(traces_dir) if traces_dir else None
    result = explore_c(source, geometry, depth)
    random_c(source, geometry, examples, length, seed, result)
    driver = build(source, geometry.block_bits, geometry.nr_pages)
    hypothesis_c(driver, geometry, examples, seed, result)
    result.found = {name: shrink(driver, trace) for name, trace in result.found.items()}
    if first_chunk and source.layout == "seed":
        raise KernelInitError("--first-chunk: the 2017 posting hides its static region in pcpu_setup_first_chunk"
                              " itself, which the C harness does not build: check its first chunk on the model (v1)")
    first = first_chunk_c(source, geometry.block_bits) if first_chunk else None
    saved = _save(result, source, traces) if traces is not None else []
    if traces is not None and first is not None:
        saved += _save_first_chunk(first, source, geometry, traces)
    if as_json:
        first_json = {} if first is None else {"first_chunk": {
            "layouts": first.layouts, "found": {name: t.to_json() for name, t in first.found.items()}}}
        click.echo(json.dumps({**result.to_json(), **first_json}, indent=2))
        return
    click.echo(f"{source.percpu_c}: layout {result.layout}, geometry {geometry.name}")
    click.echo(f"  breadth-first to depth {depth}: {result.states} states {result.states_by_depth};"
               f" random: {examples} walks and {examples} Hypothesis examples, {result.random_steps} steps")
    click.echo(f"  invariants: {', '.join(result.invariants)}; sanitizers: ASan, UBSan; WARN_ON")
    if not result.found:
        click.echo("  nothing broken")
    for name, trace in result.found.items():
        click.echo(f"  BROKEN {name} after {len(trace.ops)} ops: {trace.message}")
        for i, op in enumerate(trace.ops):
            click.echo(f"    {i}: {op.describe()}")
    if first is not None:
        click.echo(f"  first chunk ({FIRST_CHUNK_OP}): {first.layouts} layouts its callers give, at"
                   f" {geometry.block_bits} bits a page")
        if not first.found:
            click.echo("    nothing broken")
        for name, trace in first.found.items():
            click.echo(f"    BROKEN {name} by {_describe(trace)}: {trace.message}")
    for path in saved:
        click.echo(f"  trace: {path}")


@click.command()
@click.option("--source", "source_path", required=True, metavar="PATH", help="Kernel tree, mm/ folder or mm/percpu.c.")
@click.option("--variant", required=True, type=click.Choice(sorted(VARIANTS)),
              help="The model variant held to the C.")
@click.option("--geometry", "geometry_spec", default="2x8", show_default=True, metavar="PAGESxBITS",
              help="Pages (one block each) x bits per block of the chunk the C is built for.")
@click.option("--traces", type=click.IntRange(min=1), default=1000, show_default=True, help="Random traces.")
@click.option("--length", type=click.IntRange(min=1), default=20, show_default=True, help="Operations per trace.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random traces.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_user_errors
def diff(source_path: str, variant: str, geometry_spec: str, traces: int, length: int, seed: int,
         as_json: bool) -> None:
    """Compare the C build of a mm/percpu.c with a model variant: the first diverging step on random traces.

    Exit 1 when a trace diverges: the claim is that the model is the C, as a
    replayed violation's is that it breaks the invariant.
    """
    source = _source(source_path)
    geometry = _geometry(geometry_spec)
    report = diff_runs(source, variant, geometry, traces, length, seed)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_diff(report, source, variant, geometry)
    if report.identical < report.traces:
        sys.exit(EXIT_VIOLATION)


def _print_diff(report: DiffReport, source: KernelSource, variant: str, geometry: Geometry) -> None:
    share = 100.0 * report.identical / report.traces if report.traces else 0.0
    click.echo(f"{source.percpu_c} (layout {report.layout}) vs {variant}, geometry {geometry.name}:"
               f" {report.identical}/{report.traces} traces identical ({share:.2f} %), {report.steps} steps")
    if report.sanitizer_agreed:
        click.echo(f"  of which {report.sanitizer_agreed} end at a step where the model logs an access outside"
                   " a bitmap and ASan reports it")
    click.echo(f"  compared: {', '.join(report.compared)}")
    if report.first is not None:
        d = report.first
        click.echo(f"  first divergence at step {d.step}: {d.field}: model {d.model!r}, C {d.c!r}")
        for i, op in enumerate(d.ops):
            click.echo(f"    {i}: {op.describe()}")


def load_c_trace(path: str) -> CTrace:
    """A trace to replay on the C: one ``explore --traces`` wrote, or a model trace that claims a violation."""
    try:
        data = json.loads(read_input(path, TraceError))
    except json.JSONDecodeError as e:
        raise TraceError(f"{path}: not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if isinstance(data, dict) and data.get("format") == C_TRACE_FORMAT:
        return CTrace.from_json(data)
    trace = load_trace(path)
    if trace.violates is None:
        raise TraceError(f"{path}: the trace claims no violation ('violates'): nothing to reproduce on the C")
    return CTrace(trace.geometry, trace.ops, trace.violates, "", trace.init)


def _describe(trace: CTrace) -> str:
    g = trace.geometry
    if isinstance(trace.init, FirstChunkInit):
        i = trace.init
        return f"first chunk {i.static_size}+{i.reserved_size}+{i.dyn_size} bytes, {g.block_bits} bits per page"
    return f"{g.nr_pages}x{g.block_bits} (populated {list(g.populated)})"


@_user_errors
def minimize_on_c_cli(trace_file: str, source_path: str, out_file: str | None, as_json: bool) -> None:
    """``minimize TRACE --source PATH``: minimise on the C build; the result is a C trace that replays there."""
    trace = load_c_trace(trace_file)
    source = _source(source_path)
    try:
        minimized = minimize_on_c(source, trace)
    except NotACounterexample:
        click.echo(f"pcpu-verify: {trace_file}: the replay on the C does not break {trace.violates!r}:"
                   " nothing to minimise", err=True)
        sys.exit(EXIT_VIOLATION)
    out = Path(out_file) if out_file is not None else Path(trace_file).with_suffix(".min.json")
    write_output(out, c_trace_text(minimized, source))
    found = reproduce(build_for(source, minimized.geometry, minimized.init), minimized)
    if as_json:
        click.echo(json.dumps({"input": trace_file, "output": str(out), "source": str(source.percpu_c),
                               "layout": source.layout, "invariant": trace.violates,
                               "original_ops": len(trace.ops), "minimized_ops": len(minimized.ops),
                               "original_geometry": trace.geometry.to_json(),
                               "minimized_geometry": minimized.geometry.to_json(),
                               "minimized": minimized.to_json(), "reproduced": found is not None}, indent=2))
    else:
        click.echo(f"{trace_file}: {len(trace.ops)} ops -> {len(minimized.ops)} ops, geometry {_describe(trace)}"
                   f" -> {_describe(minimized)}, still violates {trace.violates} on {source.percpu_c}"
                   f" (layout {source.layout})")
        click.echo(f"wrote {out}")
        for index, op in enumerate(minimized.ops):
            click.echo(f"  step {index}: {op.describe()}")
        click.echo(f"    {minimized.message}")
    if found is None:  # the minimiser keeps only traces that break it on the C: this is our bug
        click.echo(f"pcpu-verify: internal error: the minimised trace does not break {trace.violates!r} on the C",
                   err=True)
        sys.exit(EXIT_TOOL_FAILURE)


@_user_errors
def replay_on_c(trace_file: str, source_path: str) -> None:
    """``replay TRACE --source PATH``: the trace's ops on the C build, up to the last step that breaks its claim."""
    trace = load_c_trace(trace_file)
    source = _source(source_path)
    build_ = build_for(source, trace.geometry, trace.init)
    found = reproduce(build_, trace)
    where = trace.geometry.name if isinstance(trace.init, ChunkInit) else _describe(trace)
    click.echo(f"{source.percpu_c} (layout {source.layout}), geometry {where}")
    if found is None:
        click.echo(f"result: claimed violation of {trace.violates} not reproduced on the C")
        sys.exit(EXIT_VIOLATION)
    ops, message = found
    for index, op in enumerate(ops):
        click.echo(f"  step {index}: {op.describe()}")
    click.echo(f"    {message}")
    again = breaks_after(build_, trace, len(ops) - 1)  # it held again in between
    shown = len(ops) - 1
    for index, message in again:
        for step in range(shown + 1, index + 1):
            click.echo(f"  step {step}: {trace.ops[step].describe()}")
        click.echo(f"    {message}")
        shown = index
    later = "".join(f", again at step {index}" for index, _ in again)
    click.echo(f"result: claimed violation of {trace.violates} reproduced at step {len(ops) - 1}{later} on the C")
