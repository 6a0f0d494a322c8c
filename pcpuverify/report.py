"""Printing proof results: the one place where results become text (a rich table, a summary, JSON)."""

from __future__ import annotations

import errno
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import rich.console
from rich.table import Table

from pcpuverify.proofs.blocks.labels import is_block_label
from pcpuverify.proofs.results import Result, Verdict

class Console(rich.console.Console):
    """rich's console, except when the reader of a pipe has left: rich then exits 1, which here means
    "did not reproduce"; this raises BrokenPipeError for the command line to end as a pipe expects.  Emoji
    codes are off: a block row's op followed by a colon (``pcpu_block_update_hint_alloc:end: ...``) is text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("emoji", False)
        super().__init__(*args, **kwargs)

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


STYLE = {
    Verdict.PROVED: "green",
    Verdict.VIOLATED: "bold red",
    Verdict.NOT_INDUCTIVE: "yellow",
    Verdict.UNKNOWN: "bold magenta",
    Verdict.VACUOUS: "bold magenta",
    Verdict.SPURIOUS: "bold magenta",
    Verdict.NONCONFORMANT: "bold magenta",
}


def _detail(r: Result) -> str:
    if r.verdict is Verdict.VIOLATED and r.trace is not None:
        ops = r.trace["ops"]
        steps = "; ".join(
            " ".join(f"{k}={v}" for k, v in op.items() if k != "op").join([op["op"] + " ", ""]) for op in ops
        )
        init = r.trace.get("init") or {}
        found = f" ({r.detail})" if r.detail else ""
        if init.get("kind") == "first_chunk":
            start = "the first chunk " + " ".join(f"{k}={v}" for k, v in init.items() if k != "kind")
            found = ""  # a first-chunk row's detail is these sizes again
        else:
            start = f"populated pages {r.trace['geometry'].get('populated')}"
        return f"{_ops(len(ops))} from {start}{found}" + (f": {steps}" if ops else ": broken as created")
    if r.verdict is Verdict.NOT_INDUCTIVE:
        return f"no violation within {r.depth} ops; counterexample to induction: {r.cti['op'] if r.cti else ''}"
    return r.detail


def _ops(n: int) -> str:
    return f"{n} op" if n == 1 else f"{n} ops"


def trace_file_name(r: Result) -> str:
    """The file ``prove --traces DIR`` writes a VIOLATED row's trace to."""
    return f"{r.variant}__{r.geometry}__{r.invariant}__{r.op}.json"


def results_table(results: Iterable[Result]) -> Table:
    table = Table(show_lines=False, pad_edge=False)
    for column in ("invariant", "op", "geometry", "variant", "result", "time", "detail"):
        table.add_column(
            column, justify="right" if column == "time" else "left", no_wrap=column != "detail", overflow="fold"
        )
    for r in results:
        table.add_row(
            r.invariant,
            r.op,
            r.geometry,
            r.variant,
            f"[{STYLE[r.verdict]}]{r.verdict.value}[/]",
            f"{r.seconds:.2f}s",
            _detail(r),
        )
    return table


def summary(results: list[Result]) -> str:
    counts = Counter(r.verdict for r in results)
    total = sum(r.seconds for r in results)
    parts = [f"{counts[v]} {v.value}" for v in Verdict if counts[v]]
    return f"{len(results)} obligations: {', '.join(parts)}; sum of obligation times {total:.1f}s"


def wide_console() -> Console:
    """A console for tables: the terminal's width, or 200 columns into a file or pipe."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=200)


def print_results(console: Console, results: list[Result]) -> None:
    console.print(results_table(results))
    console.print(summary(results))


# One letter per verdict and short operation names in the counts tables, so that a row fits 80 columns
LETTER = {
    Verdict.PROVED: "P", Verdict.VIOLATED: "V", Verdict.NOT_INDUCTIVE: "N", Verdict.UNKNOWN: "U",
    Verdict.VACUOUS: "vacuous", Verdict.SPURIOUS: "spurious", Verdict.NONCONFORMANT: "nonconformant",
}
SHORT_OP = {"init-first-chunk": "1st", "populate": "pop", "depopulate": "depop"}
LAYOUT_OP = "layout"
# The precondition sets of the layout rows (proofs/layout.py), in words
PRECONDITIONS = {
    "setup": "what pcpu_setup_first_chunk checks itself",
    "callers": "plus what pcpu_build_alloc_info guarantees",
    "arch": "plus the arguments the callers pass",
}


def _counts_table(first: str, results: list[Result], column: Callable[[Result], str]) -> Table:
    """A row per invariant, a column per ``column(r)``: how many obligations got each verdict, as "3P 1V"."""
    columns = list(dict.fromkeys(column(r) for r in results))
    counts: dict[str, dict[str, Counter[Verdict]]] = {}
    for r in results:
        counts.setdefault(r.invariant, {}).setdefault(column(r), Counter())[r.verdict] += 1
    table = Table(pad_edge=False, box=None, header_style="bold")
    table.add_column(first, no_wrap=True)
    for name in columns:
        table.add_column(name, no_wrap=True)
    for inv, by_column in counts.items():
        cells = [" ".join(f"[{STYLE[v]}]{c[v]}{LETTER[v]}[/]" for v in Verdict if c[v])
                 for c in (by_column.get(name, Counter()) for name in columns)]
        table.add_row(inv, *cells)
    return table


def print_verdict_counts(console: Console, results: list[Result]) -> None:
    """The suites' obligations per invariant and operation, the layout rows per property and precondition set."""
    suites = [r for r in results if r.op != LAYOUT_OP]
    layout = [r for r in results if r.op == LAYOUT_OP]
    key = ", ".join(f"{LETTER[v]} {v.value}" for v in Verdict if len(LETTER[v]) == 1)
    if suites:
        console.print(_counts_table("invariant", suites, lambda r: SHORT_OP.get(r.op, r.op)))
        console.print(f"(obligations over every variant and geometry: {key};"
                      f" 1st = init-first-chunk, pop/depop = populate/depopulate)", style="dim")
    if layout:
        if suites:
            console.print()
        console.print(_counts_table("first-chunk layout property", layout, lambda r: r.geometry.split("/")[-1]))
        console.print("(64-bit inputs, PAGE_SIZE 4096, per precondition set: "
                      + "; ".join(f"{name}: {words}" for name, words in PRECONDITIONS.items())
                      + ". VIOLATED: some input the set allows breaks the property, e.g. sizes whose sum"
                      " wraps past 2^64 or a 2 GiB unit that overflows an int; --rows gives each input)", style="dim")


def findings(results: list[Result], traces_dir: str | None) -> list[str]:
    """A line per VIOLATED obligation with its trace and the command that replays it; layout rows, which
    have inputs rather than a trace, a line per variant and precondition set."""
    where = traces_dir or "DIR"
    lines = []
    layout: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.verdict is not Verdict.VIOLATED:
            continue
        if is_block_label(r.geometry):  # a compositional row (proofs/blocks/): a state replayed, no trace
            lines.append(f"  {r.variant} {r.geometry} {r.invariant} / {r.op}: {r.detail}")
            continue
        if r.trace is None:
            layout.setdefault((r.variant, r.geometry), []).append(r.invariant)
            continue
        lines.append(f"  {r.variant} {r.geometry} {r.invariant} / {r.op}: a trace of {_ops(len(r.trace['ops']))};"
                     f" pcpu-verify replay {where}/{trace_file_name(r)}")
    for (variant, geometry), names in layout.items():
        lines.append(f"  {variant} {geometry}: {len(names)} first-chunk layout properties VIOLATED"
                     " (the layout table above; --rows gives each input)")
    return lines


def print_overview(console: Console, results: list[Result], traces_dir: str | None, next_steps: list[str]) -> None:
    """``prove``'s default output: verdict counts per invariant and operation, the findings, what to do next."""
    print_verdict_counts(console, results)
    found = findings(results, traces_dir)
    if found:
        console.print()
        console.print(f"findings ({sum(1 for r in results if r.verdict is Verdict.VIOLATED)} obligations VIOLATED):")
        for line in found:
            console.print(line, soft_wrap=True)
        if traces_dir is None and any(r.trace is not None for r in results if r.verdict is Verdict.VIOLATED):
            console.print("  (run again with --traces DIR to write these traces, then replay any of them)")
    console.print()
    console.print(summary(results))
    console.print("next:")
    for step in next_steps:
        console.print(f"  {step}", soft_wrap=True)


def results_json(results: list[Result], meta: dict[str, Any]) -> str:
    return json.dumps({**meta, "results": [r.to_json() for r in results]}, indent=2)
