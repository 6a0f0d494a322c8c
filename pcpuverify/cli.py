"""The ``pcpu-verify`` command line: thin wrappers that load input, run the layers, and print through one path.

Over 600 lines: the entry point (its exit codes, its one-line errors, the lazily loaded commands) and the
three model-side commands, ``prove``, ``replay`` and ``minimize``, with the helpers only they use; the
check's command is in check_cli.py, the C build's in kernel_cli.py.
"""

from __future__ import annotations

import html
import importlib
import io
import json
import os
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click
from click.utils import make_default_short_help
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from pcpuverify.counterexamples.minimize import minimize as minimize_trace
from pcpuverify.counterexamples.regression import regression_test
from pcpuverify.counterexamples.witness import load_witnesses
from pcpuverify.draw import LEGEND, draw_fresh_scans, draw_state
from pcpuverify.exits import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_TOOL_FAILURE,
    EXIT_UNDECIDED,
    EXIT_USAGE,
    EXIT_VIOLATION,
)
from pcpuverify.invariants.base import Violation
from pcpuverify.invariants.check import TraceReplay, UnknownInvariant, invariant
from pcpuverify.invariants.check import replay as replay_trace
from pcpuverify.kernel.block_step import BLOCK_CALL_PAGES, SEED_AND_4_14
from pcpuverify.kernel.build import build
from pcpuverify.kernel.source import KernelSource, SourceError, load_source
from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.geometry import Geometry, GeometryError
from pcpuverify.model.ops import FirstChunkInit, op_to_json
from pcpuverify.model.reference import OpError
from pcpuverify.model.trace import (
    OutputError,
    Trace,
    TraceError,
    load_trace,
    make_directory,
    output_directory,
    write_output,
)
from pcpuverify.model.variants import VARIANTS, UnknownVariant
from pcpuverify.option_ranges import DEPTH, RLIMIT, SEED, TIMEOUT
from pcpuverify.progress_lines import ProgressLines
from pcpuverify.proofs.blocks.labels import BlockLabel, is_block_label, parse_block_label
from pcpuverify.proofs.blocks.suite import ROW_NAMES as BLOCK_ROW_NAMES
from pcpuverify.proofs.blocks.suite import label_rows, run_label
from pcpuverify.proofs.layout import LAYOUT_PROPERTIES, run_layout_suite
from pcpuverify.proofs.obligations import OPS
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import SOLVER_CHOICES, SolverOptions
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.proofs.termination import Terminated, sigterm_raises, stop_if_terminated, stopping
from pcpuverify.report import Console, print_overview, print_results, results_json, trace_file_name, wide_console
from pcpuverify.symbolic.bv import check_encodable
from pcpuverify.symbolic.subjects import SUBJECTS, SubjectError, subject

if TYPE_CHECKING:
    from pcpuverify.check import Config

DEFAULT_GEOMETRIES = ("1x8", "2x8", "3x8", "2x16")


@dataclass(frozen=True)
class LazyCommand:
    module: str  # the module whose attribute of the command's name is the command
    summary: str  # the first sentence of its help: `pcpu-verify --help` lists it without importing the module


# Commands whose modules bring the check's executors and Hypothesis (0.3 s of a 0.6 s start here): imported
# only when named, so that `replay`, `minimize`, `prove` and `--help` start without them.  tests/test_cli.py
# holds each summary to the command's own help.
LAZY_COMMANDS = {
    "check": LazyCommand("pcpuverify.check_cli",
                         "The pre-merge check: the matrix of the config against the baseline, with reports for CI."),
    "explore": LazyCommand("pcpuverify.kernel_cli", "Search the C build of a mm/percpu.c: every reached state held"
                                                    " to the invariants of its layout."),
    "diff": LazyCommand("pcpuverify.kernel_cli", "Compare the C build of a mm/percpu.c with a model variant: the"
                                                 " first diverging step on random traces."),
}


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


class _Main(click.Group):
    """The ``pcpu-verify`` group: usage errors of every command as one line, the same way."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        # click's own standalone handling prints a 4-line usage block: take it over (standalone_mode=False
        # hands us the exceptions), and print one line naming the option, with where to read the rest.
        try:
            with sigterm_raises():
                rv = super().main(args, prog_name, complete_var, standalone_mode=False,
                                  windows_expand_args=windows_expand_args, **extra)
                stop_if_terminated()  # the handler's exception was lost where it landed
        except Terminated:  # a CI job cancelled: unwound as for Ctrl-C, so `prove --jobs` leaves no child behind
            click.echo("pcpu-verify: terminated", err=True)
            sys.exit(EXIT_TERMINATED)
        except click.UsageError as e:
            command = e.ctx.command_path if e.ctx is not None else "pcpu-verify"
            click.echo(f"pcpu-verify: error: {e.format_message()} (see {command} --help)", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as e:  # its own exit code is 1, which means "did not reproduce" here
            click.echo(f"pcpu-verify: error: {e.format_message()}", err=True)
            sys.exit(EXIT_USAGE)
        except click.Abort:  # Ctrl-C outside `check` (which handles its own)
            click.echo("pcpu-verify: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)  # an int is the code of --help or --version

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            return cast(click.Command, getattr(importlib.import_module(LAZY_COMMANDS[cmd_name].module), cmd_name))
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's list of commands, with the lazy ones' summaries from ``LAZY_COMMANDS``: click's own asks every
        command for its help, which imported the check for ``--help`` (user CPU 1.33 s, 0.59 s without)."""
        eager = {}
        for name in super().list_commands(ctx):
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                eager[name] = command
        names = sorted([*eager, *LAZY_COMMANDS])
        limit = formatter.width - 6 - max(map(len, names))
        rows = [(name, make_default_short_help(LAZY_COMMANDS[name].summary, limit) if name in LAZY_COMMANDS
                 else eager[name].get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        # Here, not in main: click's main turns EPIPE into exit 1, which means "did not reproduce".
        try:
            try:
                return super().invoke(ctx)
            finally:
                sys.stdout.flush()  # output still buffered when the reader left breaks here, not at exit
        except (click.ClickException, click.exceptions.Exit):
            raise
        except BrokenPipeError:
            # `pcpu-verify replay T | head -1`: the reader has what it wanted.  Quiet, and the status of a
            # program killed by SIGPIPE, as `cat` would end; the rest of the output goes nowhere.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception:
            stop_if_terminated()  # raised by the unwinding after SIGTERM (in a Z3 call it is a ctypes.ArgumentError)
            # Python's own exit code for an uncaught exception is 1, which here means "did not reproduce"
            # (`check`: a regression): a crash is a failure of the tool, with the traceback to report it.
            traceback.print_exc()
            click.echo("pcpu-verify: internal error: this is a bug of pcpu-verify; please report it with the"
                       " traceback above", err=True)
            sys.exit(EXIT_TOOL_FAILURE)


VARIANT_MODULES = "pcpu-verify.variant-modules"


def _load_variant_modules(ctx: click.Context, param: click.Parameter, paths: tuple[str, ...]) -> tuple[str, ...]:
    """Import each ``--variant-module`` file before any other option is read, so that its variants are names
    ``--variant`` accepts and traces may name; a bad file is one line and exit 2, as for ``check``."""
    if not paths:  # click calls this for every command: importing the check to load nothing cost 0.2-0.5 s a run
        return paths
    from pcpuverify.check import CheckError
    from pcpuverify.check.config import load_plugin

    for path in paths:
        try:
            load_plugin(Path(path).resolve())
        except CheckError as e:
            raise click.ClickException(str(e)) from None
    ctx.meta[VARIANT_MODULES] = [Path(path).resolve() for path in paths]  # for a test `replay --pytest` writes
    return paths


variant_module_option = click.option(
    "--variant-module", "plugins", multiple=True, type=click.Path(dir_okay=False), is_eager=True,
    expose_value=False, callback=_load_variant_modules,
    help="A Python file that registers extra variants (pcpuverify.check.register_variant), read first (repeatable).")


class _Variant(click.ParamType):
    """A variant name: ``click.Choice`` over the variants registered when the option is read, not at import
    (a ``--variant-module`` registers its variants first)."""

    name = "choice"

    @staticmethod
    def _choice() -> click.Choice:
        return click.Choice(sorted(VARIANTS))

    def get_metavar(self, param: click.Parameter, **kwargs: Any) -> str | None:
        return self._choice().get_metavar(param, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return self._choice().convert(value, param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        return self._choice().shell_complete(ctx, param, incomplete)


@click.group(cls=_Main)
@click.version_option(package_name="pcpu-verify")
def main() -> None:
    """Prove or refute the invariants of the percpu bitmap allocator (mm/percpu.c: the July 2017 series, 4.14, the
    scan_hint allocator of 5.2 to 5.4, mainline), on the model and on the kernel's own C."""


def _violation_json(v: Violation) -> dict[str, str]:
    return {"invariant": v.invariant, "chunk": v.chunk, "field": v.field, "message": v.message}


def _highlight(violations: tuple[Violation, ...] | list[Violation]) -> dict[str, set[str]]:
    hot: dict[str, set[str]] = {}
    for v in violations:
        hot.setdefault(v.chunk, set()).add(v.field)
    return hot


def _check_claim(trace: Trace, trace_file: str) -> None:
    if trace.violates is not None:
        try:
            invariant(trace.violates)
        except UnknownInvariant as e:
            raise TraceError(f"{trace_file}: 'violates': {e}") from None


def _replay(trace: Trace, trace_file: str) -> TraceReplay:
    try:
        return replay_trace(trace)
    except (OpError, LayoutError) as e:
        raise TraceError(f"{trace_file}: {e}") from None


def _replay_json(r: TraceReplay) -> dict[str, Any]:
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


def _draw_replay(console: Console, r: TraceReplay, title: str) -> None:
    """The step-by-step picture: each state, each broken invariant, each wrong field against a fresh scan."""
    B = r.trace.geometry.block_bits
    console.print(f"[bold]{escape(title)}[/]: variant {r.trace.variant}, {len(r.trace.ops)} ops")
    console.print(LEGEND, style="dim")
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
    console.print(_outcome(r), highlight=False)


def _outcome(r: TraceReplay) -> str:
    """The replay in one line: what the trace claims, and whether and where it happens."""
    def at(step: int | None) -> str:
        return "in the initial state" if step == -1 else f"at step {step}"

    claim = r.trace.violates
    if claim is not None:
        breaks = r.breaks(claim)
        if not breaks:
            return f"result: claimed violation of {claim} not reproduced"
        again = "".join(f", again {at(step)}" for step in breaks[1:])  # it held again in between
        return f"result: claimed violation of {claim} reproduced {at(breaks[0])}{again}"
    first = r.first_broken()
    if first is None:
        return "result: no claimed violation, and no invariant broken"
    return f"result: no claimed violation; the first broken invariant is {first}, {at(r.first(first))}"


def _draw_violations(console: Console, state: dict[str, Any], violations: list[Violation], block_bits: int) -> None:
    for v in violations:
        console.print(f"  [bold red]VIOLATED[/] {escape(v.describe())}")
    if violations:
        console.print(draw_fresh_scans(state, [(v.chunk, v.field) for v in violations], block_bits), end="")


def _html(r: TraceReplay, title: str) -> str:
    """The same drawing as a self-contained HTML page: inline styles, no external assets."""
    console = Console(record=True, file=io.StringIO(), width=200, highlight=False, soft_wrap=True,
                      color_system="truecolor", force_terminal=True)
    _draw_replay(console, r, title)
    page = f"pcpu-verify replay: {title} (variant {r.trace.variant}, {len(r.trace.ops)} ops)"
    # rich's page has no <title>: a browser tab or a mail attachment would show a bare file name
    return console.export_html(inline_styles=True).replace("<head>", f"<head>\n<title>{html.escape(page)}</title>", 1)


@main.command()
@click.argument("trace_file")
@click.option("--json", "as_json", is_flag=True, help="Print the state after every step as JSON.")
@click.option("--html", "html_file", metavar="FILE", default=None,
              help="Also write the step-by-step drawing as a self-contained HTML page (for a mail or a review).")
@click.option("--pytest", "pytest_file", metavar="FILE", default=None,
              help="Write a regression test: the violation at the same step here, none on variant 'fixed'.")
@click.option("--draw", is_flag=True,
              help="With --html or --pytest, draw the replay here too (by default: only what was written, and the result).")
@click.option("--source", "source_path", metavar="PATH", default=None,
              help="Replay on the C build of this mm/percpu.c (a tree, its mm/ folder or the file) instead of the model:"
                   " a trace `explore --traces` wrote, or a model trace that claims a violation.")
@variant_module_option
@user_errors
def replay(trace_file: str, as_json: bool, html_file: str | None, pytest_file: str | None, draw: bool,
           source_path: str | None) -> None:
    """Replay TRACE_FILE on the reference and show the state after every step.

    Under a step that breaks an invariant, each wrong field is shown next
    to the value a fresh scan of the bitmap gives.  The last line says
    whether the violation the trace claims was reproduced, and at which step.
    """
    if source_path is not None:
        if as_json or html_file or pytest_file or draw:
            raise click.UsageError("--source replays on the C: --json, --html, --pytest and --draw are the model's")
        from pcpuverify.kernel_cli import replay_on_c

        replay_on_c(trace_file, source_path)
        return
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
        regression = regression_test(trace, name, step, trace_file,
                                     click.get_current_context().meta.get(VARIANT_MODULES, []))
    # every file is written before anything is printed: an unwritable path is one error line, nothing else
    if html_file is not None:
        write_output(html_file, _html(r, trace_file))
    if regression is not None and pytest_file is not None:
        write_output(pytest_file, regression)

    written = []
    if html_file is not None:
        written.append(f"wrote {html_file}: the replay, {len(trace.ops)} steps drawn, as a self-contained HTML page")
    if regression is not None:
        written.append(f"wrote {pytest_file}: a regression test (run it with `pytest {pytest_file}`)")
    for line in written:  # on stderr under --json, which keeps stdout one JSON document
        click.echo(line, err=as_json)
    if as_json:
        click.echo(json.dumps(_replay_json(r), indent=2))
    elif written and not draw:
        click.echo(_outcome(r))
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
@click.option("--source", "source_path", metavar="PATH", default=None,
              help="Minimise on the C build of this mm/percpu.c (a tree, its mm/ folder or the file) instead of the"
                   " model: a trace `explore --traces` wrote, or a model trace that claims a violation; the result"
                   " replays with `replay --source`.")
@variant_module_option
@user_errors
def minimize(trace_file: str, out_file: str | None, as_json: bool, source_path: str | None) -> None:
    """Reduce the counterexample TRACE_FILE to a 1-minimal trace breaking the same invariant.

    Fewer operations (ddmin), then smaller arguments, then a smaller chunk,
    to a fixpoint; every candidate is replayed on the reference.  The result
    is written (never over TRACE_FILE unless -o names it), replayed and
    drawn.  Exit 0: minimised; 1: TRACE_FILE breaks no invariant (or not the
    one it claims); 2: bad input.  With --source, the same reductions run on
    the C build, which can also keep a sanitizer report or a WARN_ON broken.
    """
    if source_path is not None:
        from pcpuverify.kernel_cli import minimize_on_c_cli

        minimize_on_c_cli(trace_file, source_path, out_file, as_json)
        return
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
    write_output(out, json.dumps(minimized.to_json(), indent=2) + "\n")
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


def _block_label(spec: str) -> BlockLabel:
    try:
        return parse_block_label(spec)
    except GeometryError as e:
        raise click.BadParameter(str(e), param_hint="'--geometry'") from None


def _block_source(path: str, labels: list[BlockLabel]) -> KernelSource:
    """``prove --source``: a scan_hint release's C, for a compositional label's rows (one line if not)."""
    if not labels:
        raise click.UsageError("--source replays block rows: give a --geometry blockBITS or NxblockBITS label too")
    try:
        source = load_source(path)
        layout = source.layout
    except SourceError as e:
        raise click.UsageError(f"--source: {e}") from None
    if layout in SEED_AND_4_14:
        raise click.UsageError(f"--source: {source.percpu_c} has the {layout} layout; the block rows replay on"
                               " a scan_hint release's C (5.2 on)")
    try:  # built now (cached), so that a source gcc refuses is one line here, not a traceback mid-proof
        for label in labels:
            build(source, label.block_bits, label.nr_blocks or BLOCK_CALL_PAGES)
    except SourceError as e:
        raise click.UsageError(f"--source: {e}") from None
    return source


def _geometry(spec: str) -> Geometry:
    try:
        geometry = Geometry.parse(spec)
        check_encodable(geometry)
        return geometry
    except GeometryError as e:
        raise click.BadParameter(str(e), param_hint="'--geometry'") from None


@main.command()
@click.option("--variant", "variants", multiple=True, type=_Variant(),
              help="Variant to prove (repeatable; default: all).")
@click.option("--geometry", "geometries", multiple=True, metavar="PAGESxBITS",
              help=f"Blocks x bits per block, all pages populated at first (repeatable; default: {' '.join(DEFAULT_GEOMETRIES)})."
                   "  blockBITS: the block contracts on one block; NxblockBITS: the chunk-hint obligations over N"
                   " blocks' metadata (README, compositional rows).")
@click.option("--invariant", "invariants", multiple=True, help="Only this invariant (repeatable).")
@click.option("--op", "ops", multiple=True, type=click.Choice(OPS), help="Only this operation (repeatable).")
@click.option("--timeout", type=TIMEOUT, default=SolverOptions.timeout, show_default=True,
              help="Wall-clock seconds per solver query (a safety net; verdicts are bounded by --rlimit).")
@click.option("--rlimit", type=RLIMIT, default=SolverOptions.rlimit, show_default=True,
              help="Z3 resource limit per query: the deterministic bound.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Z3 random seed and conformance walk seed.")
@click.option("--solver", type=click.Choice(SOLVER_CHOICES), default="portfolio", show_default=True,
              help="Who answers each query.  portfolio: Bitwuzla (fastest here, bench/bench_proofs.py), then Z3"
                   " and cvc5 for its unknowns.  Only z3 and cvc5 are deterministic (--rlimit); with bitwuzla"
                   " (--timeout only) or portfolio, an UNKNOWN can differ between machines, a verdict cannot.")
@click.option("--depth", type=DEPTH, default=SuiteOptions.depth, show_default=True,
              help="Bounded model checking depth (operations from a new chunk).")
@click.option("--search-walks", type=click.IntRange(min=0), default=SuiteOptions.search_walks, show_default=True,
              help="Random walks on the model (seeded by --seed) for a violation beyond --depth, where bounded"
                   " model checking and the witnesses leave a row NOT-INDUCTIVE; 0: none.")
@click.option("--search-states", type=click.IntRange(min=0), default=SuiteOptions.search_states, show_default=True,
              help="Then a breadth-first search on the model, up to this many distinct states, for the state"
                   " invariants' rows still NOT-INDUCTIVE (every operation from every new chunk: a shortest trace;"
                   " about 100,000 states reach 8 operations at 1x8, in two to three minutes); 0: none.")
@click.option("--block-states", type=click.IntRange(min=0), default=None,
              help="Then ask each row still NOT-INDUCTIVE again under a closed set of block states (and one of"
                   " chunk_md's hints, for the scan_hint releases), grown from the states the model reached until no"
                   " operation leaves them, together with the invariants Houdini keeps under them (at most this many"
                   " of each; a one-block chunk's hints are joined with its block's state: mainline at 1x8,"
                   " 2,829 block states and 18,063 joined states in about 5 minutes);"
                   " 0: none."
                   "  [default: the `block-states` of the project's [tool.pcpu-verify] config, if run inside it;"
                   f" else {SuiteOptions.block_states}]")
@click.option("--jobs", type=click.IntRange(min=0), default=SolverOptions.jobs, show_default=True,
              help="Worker processes for the independent queries and obligations of a suite (0: one per core);"
                   " the verdicts are those of one worker.")
@click.option("--traces", "traces_dir", type=click.Path(file_okay=False), default=None,
              help="Write the trace of every VIOLATED obligation into this directory.")
@click.option("--witnesses", "witness_paths", multiple=True, type=click.Path(exists=True),
              help="Violating traces (files or directories of *.json) to carry to each obligation that bounded"
                   " model checking leaves NOT-INDUCTIVE: one that replays there makes it VIOLATED (repeatable;"
                   " default: the `traces` of the project's [tool.pcpu-verify] config, if run inside it).")
@click.option("--no-witnesses", is_flag=True, help="Carry no traces, not even the project's.")
@click.option("--layout/--no-layout", default=True, show_default=True,
              help="Also prove the first-chunk layout arithmetic at 64 bits (PAGE_SIZE 4096; skipped with --op, and"
                   " for the release variants, whose pcpu_setup_first_chunk has no symbolic form).")
@click.option("--rows", is_flag=True, help="Print every obligation as a table row (default: counts and findings).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--source", "source_path", metavar="PATH", default=None,
              help="With a blockBITS or NxblockBITS label: replay each VIOLATED row of a scan_hint release"
                   " (linux-5.4, mainline, mainline-fixed) on the C build of this mm/percpu.c too (a tree, its mm/"
                   " folder or the file; 5.2 on); a row whose C state differs from the model's is NONCONFORMANT.")
@variant_module_option
@user_errors
def prove(variants: tuple[str, ...], geometries: tuple[str, ...], invariants: tuple[str, ...], ops: tuple[str, ...],
          timeout: float, rlimit: int, seed: int, solver: str, depth: int, search_walks: int, search_states: int,
          block_states: int | None, jobs: int,
          traces_dir: str | None, witness_paths: tuple[str, ...], no_witnesses: bool, layout: bool, rows: bool,
          as_json: bool, source_path: str | None) -> None:
    """Prove or refute every invariant for every operation on small geometries.

    Each obligation is PROVED (unsat, assumptions satisfiable), VIOLATED
    (with a trace that replays on the reference), NOT-INDUCTIVE (counterexample
    to induction, nothing reachable within --depth nor found by --search-walks
    or --search-states, and not proved under --block-states),
    UNKNOWN (never a pass).
    Printed: the verdict counts per invariant and operation, each finding
    with the command that replays it, and what to do next (--rows: every row).
    """
    from pcpuverify.check import suite_rows

    for name in invariants:
        if name not in LAYOUT_PROPERTIES and name not in BLOCK_ROW_NAMES:
            invariant(name)
    geos = [_geometry(g) for g in geometries or DEFAULT_GEOMETRIES if not is_block_label(g)]
    labels = [_block_label(g) for g in geometries if is_block_label(g)]  # compositional rows, skipped with --op
    if no_witnesses and witness_paths:
        raise click.UsageError("--witnesses and --no-witnesses exclude each other")
    source = _block_source(source_path, labels) if source_path is not None else None
    traces = output_directory(traces_dir) if traces_dir is not None else None
    witnesses = [] if no_witnesses else load_witnesses([Path(p) for p in witness_paths] or _project_traces())
    # by default the project's matrix (its config's variants), as before the release encodings; outside a
    # project every subject with an encoding
    config = _project_config()
    chosen = list(variants) or (sorted(config.variants) if config is not None else
                                sorted(name for name, s in SUBJECTS.items() if s.encoding is not None))
    for name in chosen:
        subject(name).require_encoding()  # one line and exit 2 for a model-only subject
    unproved = [name for name in chosen if not subject(name).proves_labels]
    for label in labels if unproved else ():
        why = "4.14's blocks have no block contracts"
        if variants:
            raise click.UsageError(f"--geometry {label.name}: no rows for {', '.join(unproved)}: {why}")
        click.echo(f"pcpu-verify: note: no {label.name} rows for {', '.join(unproved)}: {why}", err=True)
    if block_states is None:  # as the check asks the project's rows: `prove` in a clone gives the gate's verdicts
        block_states = config.block_states if config is not None else SuiteOptions.block_states
    options = SuiteOptions(solver=SolverOptions(rlimit=rlimit, seed=seed, timeout=timeout, solver=solver,
                                                jobs=jobs or os.cpu_count() or 1), depth=depth,
                           search_walks=search_walks, search_states=search_states, block_states=block_states)
    err = Console(stderr=True)
    lines = None if err.is_terminal else ProgressLines(err)  # a CI log: no spinner, so say what finished
    wanted = {n for n in invariants if n not in LAYOUT_PROPERTIES} if invariants else None
    results: list[Result] = []  # the finished suites' rows
    streamed: list[Result] = []  # the running suite's rows, as they settle
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=err, transient=True, disable=as_json or not err.is_terminal) as progress:
            for variant in chosen:
                total = len(suite_rows(frozenset(wanted) if wanted is not None else None, frozenset(ops) or None,
                                       variant))
                for geometry in geos:
                    task = progress.add_task(f"{variant} {geometry.name}", total=None)

                    def show(r: Result, task: TaskID = task, label: str = f"{variant} {geometry.name}",
                             total: int = total) -> None:
                        progress.update(task, description=f"{label}: {r.invariant} / {r.op} {r.verdict.value}")
                        streamed.append(r)
                        if lines is not None:
                            lines.add(label, total, r)

                    if total:  # a selection with no row of this variant is not solved for nothing
                        results += run_suite(variant, geometry, options, wanted, set(ops) or None, show, witnesses)
                        streamed.clear()
                        if lines is not None:
                            lines.suite_done()
                    progress.remove_task(task)
                for label in [] if ops or variant in unproved else labels:
                    task = progress.add_task(f"{variant} {label.name}", total=None)
                    picked = frozenset(invariants) if invariants else None

                    def shown(r: Result, task: TaskID = task, name: str = f"{variant} {label.name}",
                              total: int = len(label_rows(label, variant, picked))) -> None:
                        progress.update(task, description=f"{name}: {r.invariant} / {r.op} {r.verdict.value}")
                        streamed.append(r)
                        if lines is not None:
                            lines.add(name, total, r)

                    results += run_label(variant, label, options.solver, picked, shown, source)
                    streamed.clear()
                    if lines is not None:
                        lines.suite_done()
                    progress.remove_task(task)
                if layout and not ops and subject(variant).proves_layout:
                    label = f"{variant} first-chunk layout at 64 bits"
                    task = progress.add_task(label, total=None)
                    found = [r for r in run_layout_suite(4096, options.solver, variant=variant)
                             if not invariants or r.invariant in invariants]
                    if lines is not None:
                        lines.line(label, Counter(r.verdict.value for r in found), f"{len(found)} rows")
                    results += found
                    progress.remove_task(task)
    except BaseException as e:
        if lines is not None:
            lines.flush()
        if stopping() and (results or streamed):  # Ctrl-C or SIGTERM: what was settled is printed, not lost
            how = "interrupted" if isinstance(e, KeyboardInterrupt) else "terminated"
            _print_proved([*results, *streamed], options, traces, traces_dir, as_json, rows, stopped=how)
        raise
    if not results:  # a selection that matches no row proved nothing, so it may not exit 0
        raise click.UsageError("nothing to prove: no obligation matches --geometry, --invariant and --op together"
                               " (a block label has no --op rows; layout properties need --layout)")
    _print_proved(results, options, traces, traces_dir, as_json, rows)
    if any(r.verdict in (Verdict.VACUOUS, Verdict.SPURIOUS, Verdict.NONCONFORMANT) for r in results):
        sys.exit(EXIT_TOOL_FAILURE)
    if any(r.verdict is Verdict.UNKNOWN for r in results):
        sys.exit(EXIT_UNDECIDED)


def _print_proved(results: list[Result], options: SuiteOptions, traces: Path | None, traces_dir: str | None,
                  as_json: bool, rows: bool, stopped: str | None = None) -> None:
    """``prove``'s rows: their traces saved, then the JSON, the table or the overview.  ``stopped`` (interrupted,
    terminated) marks the rows of a run cut short: those settled before it, the rest not reached."""
    if traces is not None:
        _save_traces(results, traces)
    if as_json:
        click.echo(results_json(results, {"options": options.to_json(), **({"stopped": stopped} if stopped else {})}))
        return
    if stopped:
        click.echo(f"pcpu-verify: {stopped}: {len(results):,} rows, each as far as it got; the rest were not reached")
    if rows:
        print_results(wide_console(), results)
    else:
        print_overview(wide_console(), results, traces_dir, _next_steps(results, _project_config()))


def _project_config() -> Config | None:
    """The [tool.pcpu-verify] config at or above the working directory, if any."""
    from pcpuverify.check import CheckError, find_config, load_config

    try:
        config_file = find_config(Path.cwd())
    except CheckError:  # not inside a project
        return None
    try:
        return load_config(config_file)
    except CheckError as e:
        raise click.UsageError(f"the project's config (witnesses, baseline): {e}") from None


def _project_traces() -> list[Path]:
    """The regression trace directories of the project's config (none outside a project)."""
    config = _project_config()
    return [] if config is None else [p for p in config.traces if p.is_dir()]


def _next_steps(results: list[Result], config: Config | None) -> list[str]:
    """What a newcomer can do after `prove`: read the gallery, replay, see every row, compare with the baseline."""
    from pcpuverify.check import CheckError, load_baseline, obligation_of

    steps = []
    if config is not None and (config.root / "docs" / "gallery.md").is_file():
        steps.append(f"every finding, minimised and drawn: {os.path.relpath(config.root / 'docs' / 'gallery.md')}")
    if any(r.trace is not None for r in results):  # a block row's or layout row's finding has no trace to replay
        steps.append("draw a trace step by step: pcpu-verify replay TRACE (with --html FILE, a page to share)")
    steps.append("every obligation with its detail: add --rows (or --json)")
    if config is None:
        return steps
    try:
        baseline = load_baseline(config.baseline, required=False)
    except CheckError as e:
        return [*steps, f"the baseline could not be read: {e}"]
    name = os.path.relpath(config.baseline)
    for variant in sorted({r.variant for r in results}):
        rows = [(r, obligation_of(r)) for r in results if r.variant == variant]
        compared = [(r, e) for r, key in rows if (e := baseline.expected(key))]
        differ = [f"{r.invariant} / {r.op} at {r.geometry} ({r.verdict.value}, expected {e})"
                  for r, e in compared if r.verdict.value != e]
        line = f"{variant}: {len(compared) - len(differ)} of {len(compared)} rows as {name} expects them"
        if differ:
            line += f"; {len(differ)} differ: {'; '.join(differ[:3])}" + ("; ..." if len(differ) > 3 else "")
        unlisted = sorted({key.setting.label for _, key in rows} - set(baseline.suites.get(variant, {})))
        if unlisted:
            line += f" ({', '.join(unlisted)}: not in the baseline)"
        steps.append(line)
    return steps


def _save_traces(results: list[Result], directory: Path) -> None:
    make_directory(directory)
    for r in results:
        if r.verdict is Verdict.VIOLATED and r.trace is not None:
            write_output(directory / trace_file_name(r), json.dumps(r.trace, indent=2) + "\n")


