"""Work items and what runs in a worker process: suites, layout suites, stateful machines, C sources, minimisation."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pcpuverify.check.cache import result_to_json
from pcpuverify.check.config import load_plugin
from pcpuverify.check.csubject import CItem, run_c_item
from pcpuverify.check.obligation import (
    LAYOUT_PAGE_SIZE,
    LAYOUT_SETS,
    GeometrySetting,
    LayoutSetting,
    SourceSetting,
    StatefulRun,
    obligation_of,
)
from pcpuverify.check.outcomes import Row
from pcpuverify.counterexamples.witness import load_witnesses
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.children import watch_parent
from pcpuverify.proofs.blocks.labels import BlockLabel
from pcpuverify.proofs.results import Result
from pcpuverify.proofs.solver import SolverOptions
from pcpuverify.proofs.suite import SuiteOptions


@dataclass(frozen=True)
class SuiteItem:
    variant: str
    geometry: Geometry | BlockLabel  # a label: the compositional rows (proofs/blocks/)
    options: SuiteOptions
    invariants: frozenset[str] | None
    ops: frozenset[str] | None
    key: str
    estimate: float
    witnesses: tuple[Path, ...] = ()  # the regression trace directories, carried to rows left NOT-INDUCTIVE

    @property
    def label(self) -> str:
        return f"{self.variant} {self.geometry.name}"


@dataclass(frozen=True)
class LayoutItem:
    """The first-chunk layout proofs of one variant: every property under every precondition set."""

    variant: str
    solver: SolverOptions
    properties: frozenset[str] | None  # the rows to report (the suite proves them all: one cache entry)
    key: str
    estimate: float = 30.0

    @property
    def label(self) -> str:
        return f"{self.variant} layout"


@dataclass(frozen=True)
class StatefulItem:
    variant: str
    examples: int
    key: str
    estimate: float

    @property
    def label(self) -> str:
        return f"{self.variant} stateful"


@dataclass(frozen=True)
class MinimiseItem:
    variant: str
    geometry: Geometry
    invariant: str
    op: str
    depth: int
    solver: SolverOptions
    key: str
    estimate: float = 5.0

    @property
    def label(self) -> str:
        return f"minimise {self.variant} {self.geometry.name} {self.invariant}"


Item = SuiteItem | LayoutItem | StatefulItem | MinimiseItem | CItem


def _owns(item: Item, row: Row) -> bool:
    """``row`` is one of the rows ``item`` produced."""
    if row.key.subject != item.variant:
        return False
    if isinstance(item, SuiteItem):
        return row.key.setting == GeometrySetting(item.geometry)
    if isinstance(item, LayoutItem):
        return isinstance(row.key.setting, LayoutSetting)
    if isinstance(item, StatefulItem):
        return isinstance(row.key.setting, StatefulRun)
    if isinstance(item, CItem):
        return row.key.setting == SourceSetting(item.geometry)
    return False


def _worker_init(plugins: tuple[Path, ...], parent: int) -> None:
    # The parent owns Ctrl-C: it stops the workers and writes nothing half-done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A parent that dies without stopping us (SIGKILL, a crash) cannot: leave with it, and with the last
    # worker gone the resource tracker sees its pipe close and leaves too (the watch of every child).
    watch_parent(parent)
    for plugin in plugins:
        load_plugin(plugin)


RowSink = Callable[[Result], None]


@dataclass(frozen=True)
class RowsFile:
    """A row sink for a local worker: each finished row appended to ``path`` as a line of JSON."""

    path: str

    def __call__(self, r: Result) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(result_to_json(r)) + "\n")


def run_item(item: Item, rows: RowSink | None = None) -> Any:
    """Run one work item (in a worker process); a suite hands each row to ``rows`` as it finishes."""
    if isinstance(item, SuiteItem):
        return _run_suite_item(item, rows)
    if isinstance(item, LayoutItem):
        return run_layout(item.variant, item.solver)
    if isinstance(item, StatefulItem):
        return run_stateful(item.variant, item.examples)
    if isinstance(item, CItem):
        return run_c_item(item)
    return run_minimise(item)


def _run_suite_item(item: SuiteItem, rows: RowSink | None) -> list[Result]:
    from pcpuverify.proofs.blocks.suite import run_label
    from pcpuverify.proofs.suite import run_suite

    if isinstance(item.geometry, BlockLabel):
        return run_label(item.variant, item.geometry, item.options.solver, item.invariants, rows)
    return run_suite(item.variant, item.geometry, item.options,
                     set(item.invariants) if item.invariants is not None else None,
                     set(item.ops) if item.ops is not None else None, rows, load_witnesses(item.witnesses))


def run_layout(variant: str, solver: SolverOptions) -> list[Result]:
    """``run_layout_suite`` at ``LAYOUT_PAGE_SIZE`` on every precondition set, each result's geometry its setting's.

    (A NONCONFORMANT result -- conformance failed before any proof -- names
    the page size only; it gets its set's label here, like every other one.)
    """
    from pcpuverify.proofs.layout import run_layout_suite

    results = run_layout_suite(LAYOUT_PAGE_SIZE, solver, variant=variant, sets=LAYOUT_SETS)
    return [replace(r, geometry=obligation_of(r).setting.label) for r in results]


def run_stateful(variant: str, examples: int) -> dict[str, Any]:
    """The stateful machines on every geometry they list: the invariants broken, with traces."""
    from pcpuverify.counterexamples.stateful import run_machines

    findings = run_machines(variant, examples)
    return {
        "seconds": findings.seconds,
        "steps": findings.steps,
        "broken": {name: trace.to_json() for name, trace in sorted(findings.shortest.items())},
    }


def run_minimise(item: MinimiseItem) -> dict[str, Any] | None:
    """The shortest counterexample (fewest ops, smallest arguments and geometry) for a new violation."""
    from pcpuverify.proofs.shortest import shortest_counterexample

    try:
        found = shortest_counterexample(item.variant, item.geometry, item.invariant, item.depth, item.solver)
    except AssertionError:  # the solver's trace did not replay: keep the suite's own
        return None
    return None if found is None else found.trace.to_json()
