"""The ``pcpu-verify check`` command: read the config, run the check with progress, write the reports, exit.

Exit codes (the table is pcpuverify/exits.py; what they mean for a check):

    0  every row equals the baseline, nothing UNKNOWN, nothing left unrun
    1  regression: a new violation, a known violation that disappeared, another change of verdict,
       or a regression trace that no longer reproduces
    2  bad usage or input (config, baseline, trace, variant, geometry): one line on stderr
    3  undecided: some obligation UNKNOWN (solver limit, timeout) or NOT RUN (budget)
    4  tool failure: VACUOUS, SPURIOUS or NONCONFORMANT (the encoding disagrees with model/)
  130  interrupted (Ctrl-C): no report written, no half-written cache entry
  143  terminated (SIGTERM): the same

When several apply, the first of 4, 1, 3 wins.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from pcpuverify.check import (
    USER_ERRORS,
    CheckRun,
    Terminated,
    load_config,
    run_check,
)
from pcpuverify.check import Progress as CheckProgress
from pcpuverify.check.config import EXECUTORS
from pcpuverify.exits import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE
from pcpuverify.model.trace import make_directory, output_directory, write_output
from pcpuverify.option_ranges import DEPTH, RLIMIT, SEED, TIMEOUT
from pcpuverify.report import Console
from pcpuverify.reports import junit_xml, markdown, print_check, sarif_json

SCHEDULER_ENV = "PCPU_VERIFY_SCHEDULER"  # the Dask scheduler's address for --executor dask


class _Display:
    """Progress on stderr: a live bar per running item on a terminal, one line per finished item otherwise."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console, self.quiet = console, quiet
        self.live = console.is_terminal and not quiet
        self.bars = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=console, transient=True, disable=not self.live)
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, p: CheckProgress) -> None:
        if p.event == "warning":  # not progress: --quiet keeps it
            self.console.print(f"pcpu-verify: warning: {p.message}", highlight=False, soft_wrap=True)
            return
        if self.quiet:
            return
        if self.live:
            if p.event in ("start", "row") and p.label not in self.tasks:
                self.tasks[p.label] = self.bars.add_task(p.label, total=p.total or None)
            if p.event == "row":
                self.bars.update(self.tasks[p.label], completed=p.done, total=p.total)
            if p.event in ("done", "not run") and p.label in self.tasks:
                self.bars.remove_task(self.tasks.pop(p.label))
        if p.event in ("done", "cached", "not run", "waiting"):
            self.console.print(f"check: {p.label}: {p.event}{': ' + p.message if p.message else ''}", highlight=False)


def _write(path: str | None, text: str) -> None:
    """Write a report atomically (a reader never sees half of it), making its folder (``check`` asked at its start
    that it can be made)."""
    if path is not None:
        make_directory(Path(path).parent)
        write_output(path, text)


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="A TOML file with a [tool.pcpu-verify] table (default: the nearest pyproject.toml).")
@click.option("--variant", "variants", multiple=True, help="Check this variant (repeatable; default: the config's).")
@click.option("--geometry", "geometries", multiple=True, metavar="PAGESxBITS",
              help="Check this geometry (repeatable; default: the config's).")
@click.option("--invariant", "invariants", multiple=True, help="Only this invariant, or layout property (repeatable).")
@click.option("--op", "ops", multiple=True, help="Only this operation, or `layout` for the layout rows (repeatable).")
@click.option("--variant-module", "plugins", multiple=True, type=click.Path(dir_okay=False),
              help="A Python file that registers extra variants (pcpuverify.check.register_variant).")
@click.option("--against", "against", metavar="PARENT", default=None,
              help="Hold each variant to PARENT's baseline rows: report what the patch moved (violations gained,"
                   " lost, verdicts changed), not PARENT's known findings; PARENT's traces replay on the variant.")
@click.option("--source", "sources", multiple=True, metavar="PATH",
              help="Check the C build of this kernel's mm/percpu.c (a tree, its mm/ folder or the file) as a subject"
                   " (repeatable; default: the config's `sources`): gating a patch to mm/percpu.c is applying it"
                   " and running check.")
@click.option("--depth", type=DEPTH, default=None,
              help="Bounded model checking depth, and the breadth-first depth of the search on a C source.")
@click.option("--rlimit", type=RLIMIT, default=None, help="Z3 resource limit per query.")
@click.option("--seed", type=SEED, default=None, help="Z3 and conformance seed.")
@click.option("--timeout", type=TIMEOUT, default=None, help="Wall-clock seconds per query (a safety net).")
@click.option("--budget", type=click.FloatRange(min=0), default=None,
              help="Seconds for the whole check; what it does not reach is reported NOT RUN (exit 3).")
@click.option("--jobs", type=click.IntRange(min=0), default=None, help="Worker processes (0: one per core).")
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
              help="Where the suites, layout proofs, stateful machines and minimisations run: this machine's"
                   " process pool, or Dask distributed (pip install 'pcpu-verify[cluster]').")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help=f"With --executor dask: the Dask scheduler, e.g. tcp://host:8786 (default: ${SCHEDULER_ENV};"
                   " without either, a LocalCluster of --jobs workers for this run).")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="The result cache directory.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option("--baseline", type=click.Path(dir_okay=False), default=None, help="The baseline file.")
@click.option("--stateful-examples", type=click.IntRange(min=0), default=None,
              help="Hypothesis examples per geometry for the stateful machines (0: skip them).")
@click.option("--layout/--no-layout", default=None,
              help="Run (or skip) the first-chunk layout proofs, PAGE_SIZE 4096, for every variant"
                   " (default: the config's `layout`).")
@click.option("--update-baseline", is_flag=True,
              help="Run the check and rewrite the baseline from its results (refused on UNKNOWN, NOT RUN, tool failure).")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), default=None, help="Write a JUnit XML report.")
@click.option("--sarif", "sarif_file", type=click.Path(dir_okay=False), default=None, help="Write a SARIF 2.1.0 report.")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False), default=None,
              help="Write a Markdown summary for a pull-request comment.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary and every row as JSON on stdout.")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
def check(config_file: str | None, variants: tuple[str, ...], geometries: tuple[str, ...],
          invariants: tuple[str, ...], ops: tuple[str, ...], plugins: tuple[str, ...], against: str | None,
          sources: tuple[str, ...], depth: int | None,
          rlimit: int | None, seed: int | None, timeout: float | None, budget: float | None, jobs: int | None,
          executor: str, scheduler: str | None,
          cache_dir: str | None, no_cache: bool, baseline: str | None, stateful_examples: int | None,
          layout: bool | None, update_baseline: bool, junit_file: str | None, sarif_file: str | None,
          markdown_file: str | None, as_json: bool, quiet: bool) -> None:
    """The pre-merge check: the matrix of the config against the baseline, with reports for CI.

    Exit 0 only when every row equals the baseline and nothing is UNKNOWN or
    NOT RUN; 1 regression, 2 bad usage or input, 3 UNKNOWN or NOT RUN,
    4 tool failure (e.g. NONCONFORMANT), 130 interrupted.
    """
    err = Console(stderr=True, highlight=False)
    cwd = Path.cwd()
    overrides: dict[str, Any] = {
        "variants": list(variants) or None,
        "geometries": list(geometries) or None,
        "depth": depth, "rlimit": rlimit, "seed": seed, "timeout": timeout, "budget": budget, "jobs": jobs,
        # command-line paths are relative to where the command runs, the config's to the config file
        "cache-dir": False if no_cache else (str(cwd / cache_dir) if cache_dir else None),
        "baseline": str(cwd / baseline) if baseline else None,
        "stateful-examples": stateful_examples,
        "layout": layout,
        "invariants": list(invariants) or None,
        "ops": list(ops) or None,
        "plugins": [str(cwd / p) for p in plugins] or None,
        "against": against,
        "sources": [str(cwd / p) for p in sources] or None,
        "executor": executor,
        # the variable names the cluster to use when one is asked for; it never turns a local run into one
        "scheduler": scheduler or (os.environ.get(SCHEDULER_ENV) if executor == "dask" else None),
    }
    try:
        config = load_config(Path(config_file) if config_file else None, overrides)
        for report in (junit_file, sarif_file, markdown_file):  # a folder that cannot be made fails before the run
            if report is not None:
                output_directory(Path(report).parent)
        display = _Display(err, quiet or as_json and not err.is_terminal)
        with display.bars:
            run = run_check(config, display, update_baseline=update_baseline)
        _write(junit_file, junit_xml(run))
        _write(sarif_file, sarif_json(run))
        _write(markdown_file, markdown(run))
    except USER_ERRORS as e:
        click.echo(f"pcpu-verify: error: {e}", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("pcpu-verify: interrupted: no report written", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Terminated:
        click.echo("pcpu-verify: terminated: no report written", err=True)
        sys.exit(EXIT_TERMINATED)
    _print(run, as_json)
    sys.exit(run.exit_code)


def _print(run: CheckRun, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**run.summary_json(), "results": [r.to_json() for r in run.rows]}, indent=1))
        return
    console = Console(highlight=False)
    print_check(console if console.is_terminal else Console(highlight=False, width=200), run)
