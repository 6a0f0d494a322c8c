"""Printing proof results: the one place where results become text (a rich table, a summary, JSON)."""

from __future__ import annotations

import errno
import json
import os
from collections import Counter
from collections.abc import Iterable
from typing import Any

import rich.console
from rich.table import Table

from pcpuverify.proofs.results import Result, Verdict

class Console(rich.console.Console):
    """rich's console, except when the reader of a pipe has left: rich then exits 1, which here means
    "did not reproduce"; this raises BrokenPipeError for the command line to end as a pipe expects."""

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
        populated = r.trace["geometry"].get("populated")
        found = f"; {r.detail}" if r.detail else ""
        return f"{len(ops)} ops (populated {populated}): {steps}{found}"
    if r.verdict is Verdict.NOT_INDUCTIVE:
        return f"no violation within {r.depth} ops; counterexample to induction: {r.cti['op'] if r.cti else ''}"
    return r.detail


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


def results_json(results: list[Result], meta: dict[str, Any]) -> str:
    return json.dumps({**meta, "results": [r.to_json() for r in results]}, indent=2)
