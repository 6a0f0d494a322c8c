"""Search a C build of mm/percpu.c: every reached state held to the invariants its layout supports.

The C counterpart of ``explore.py``: a breadth-first search to a depth
from every new chunk of the geometry (every subset of pages populated),
every operation with every argument (``explore.all_ops``), states
deduplicated by their dump (the state invariants judge each distinct state
once, the step invariants every step).  The C cannot be copied, so a child state is
reached by replaying its path from a fresh chunk, all the children of a
state in one round trip to the driver.  Then seeded random walks
(``model.random_ops``'s choice of operations, made on the C state).
Breadth first, the first trace found per invariant is a shortest one.
A sanitizer report or a ``WARN_ON`` is a finding named ``sanitizer`` /
``warning``, with the trace that reached it.
"""

from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from pcpuverify.counterexamples.explore import all_ops
from pcpuverify.invariants.applicability import covers
from pcpuverify.invariants.base import REGISTRY, ChunkSnapshot, Violation
from pcpuverify.invariants.check import ALL_INVARIANTS
from pcpuverify.kernel.build import Build, build
from pcpuverify.kernel.convert import MODEL_OF_LAYOUT, NOT_ON_C, to_model, to_model_chunks
from pcpuverify.kernel.harness import (
    DriverGone,
    Finding,
    KernelChunk,
    build_for,
    check_op,
    run_paths,
    symbolized_report,
)
from pcpuverify.kernel.process import summarize
from pcpuverify.kernel.source import KernelSource
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import ChunkInit, Init, Op, op_to_json
from pcpuverify.model.random_ops import random_op
from pcpuverify.model.reference import OpError, StepResult
from pcpuverify.model.state import dynamic_chunk
from pcpuverify.model.trace import FORMAT, TraceError, trace_from_json
from pcpuverify.model.variants import VARIANTS

# Which invariants each layout's states are held to: every one applicability.APPLIES_TO lists for the
# layout's model chunk (kernel/convert.py's MODEL_OF_LAYOUT), less those the C cannot be held to that way.
INVARIANTS_BY_LAYOUT: dict[str, tuple[str, ...]] = {
    layout: tuple(inv.name for inv in ALL_INVARIANTS if covers(inv, chunk_type) and inv.name not in NOT_ON_C)
    for layout, (chunk_type, _) in MODEL_OF_LAYOUT.items()
}


def state_violations(layout: str, dump: dict[str, object], geometry: Geometry) -> list[Violation]:
    """The state invariants of ``layout`` that ``dump`` breaks, in any of its chunks."""
    alloc, chunks = to_model_chunks(dump, geometry)
    return [v for chunk in chunks.values() for name in INVARIANTS_BY_LAYOUT[layout] if REGISTRY[name].kind == "state"
            for v in REGISTRY[name].violations(alloc, chunk)]


def snapshots(before: dict[str, object], geometry: Geometry) -> dict[str, ChunkSnapshot]:
    """What the step invariants read of each chunk of ``before``, by role: taken once for every step from it."""
    _, pre = to_model_chunks(before, geometry)
    return {role: ChunkSnapshot.of(chunk) for role, chunk in pre.items()}


def step_only_violations(layout: str, pre: dict[str, ChunkSnapshot], step: StepResult, after: dict[str, object],
                         geometry: Geometry) -> list[Violation]:
    """The step invariants of ``layout`` that the step from ``pre`` (``snapshots``) to ``after`` breaks.

    They judge the chunk the step ran on (the reserved one for a reserved op).
    """
    name = "reserved" if step.op.reserved else "dynamic"
    alloc, chunks = to_model_chunks(after, geometry)
    return [v for inv in INVARIANTS_BY_LAYOUT[layout] if REGISTRY[inv].kind == "step"
            for v in REGISTRY[inv].violations(alloc, pre[name], step, chunks[name])]


def step_violations(layout: str, before: dict[str, object], step: StepResult, after: dict[str, object],
                    geometry: Geometry) -> list[Violation]:
    """The step and state invariants of ``layout`` that the step from ``before`` to ``after`` breaks."""
    return (step_only_violations(layout, snapshots(before, geometry), step, after, geometry)
            + state_violations(layout, after, geometry))


C_TRACE_FORMAT = "pcpu-verify-c-trace/1"


def c_trace_file(trace: dict[str, Any], source: KernelSource) -> dict[str, Any]:
    """A C trace (``CTrace.to_json()``) as a file holds it: with the source it replays on (path, hash, layout)."""
    return {"format": C_TRACE_FORMAT, "source": str(source.percpu_c), "sha256": source.sha256,
            "layout": source.layout, **trace}


@dataclass
class CTrace:
    """A path on the C build: the geometry and init it starts from, its ops, and what breaks after the last."""

    geometry: Geometry
    ops: tuple[Op, ...]
    violates: str
    message: str
    init: Init = field(default_factory=ChunkInit)

    def to_json(self) -> dict[str, object]:
        init = {} if isinstance(self.init, ChunkInit) else {"init": self.init.to_json()}
        return {"geometry": self.geometry.to_json(), **init, "ops": [op_to_json(op) for op in self.ops],
                "violates": self.violates, "message": self.message}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CTrace:
        """The inverse of ``to_json``; geometry, init and ops are checked as a model trace's are (TraceError)."""
        as_model = trace_from_json({"format": FORMAT, "variant": next(iter(VARIANTS)), "init": data.get("init"),
                                    "geometry": data.get("geometry"), "ops": data.get("ops", [])})
        violates, message = data.get("violates"), data.get("message", "")
        if not isinstance(violates, str) or not isinstance(message, str):
            raise TraceError("'violates' and 'message' must be strings")
        return cls(as_model.geometry, as_model.ops, violates, message, as_model.init)


@dataclass
class CSearch:
    """What the search on the C saw."""

    layout: str
    geometry: Geometry
    invariants: tuple[str, ...]
    states_by_depth: list[int] = field(default_factory=list)
    random_steps: int = 0
    found: dict[str, CTrace] = field(default_factory=dict)

    @property
    def states(self) -> int:
        return sum(self.states_by_depth)

    def to_json(self) -> dict[str, object]:
        return {"layout": self.layout, "geometry": self.geometry.name, "invariants": list(self.invariants),
                "states_by_depth": self.states_by_depth, "random_steps": self.random_steps,
                "found": {name: t.to_json() for name, t in self.found.items()}}


def _roots(geometry: Geometry) -> list[Geometry]:
    n = geometry.nr_pages
    return [Geometry(geometry.block_bits, n, tuple(p for p in range(n) if (s >> p) & 1)) for s in range(1 << n)]


def note(result: CSearch, build_: Build, geometry: Geometry, ops: tuple[Op, ...], violations: list[Violation],
          findings: list[Finding]) -> None:
    """Keep the first trace of each broken invariant and each kind of finding (a sanitizer report symbolized)."""
    for v in violations:
        result.found.setdefault(v.invariant, CTrace(geometry, ops, v.invariant, v.describe()))
    for f in findings:
        if f.kind not in result.found:
            trace = ops[:f.step + 1]
            summary = f.summary
            if f.kind == "sanitizer":
                summary = summarize(symbolized_report(build_, geometry, trace)) or summary
            result.found[f.kind] = CTrace(geometry, trace, f.kind, summary)


def _key(dump: dict[str, object]) -> str:
    return json.dumps(dump, sort_keys=True)


def _model_view(dump: dict[str, object], geometry: Geometry) -> SimpleNamespace:
    """What ``explore.all_ops`` and ``random_ops.random_op`` read of a Reference, from a C dump."""
    _, chunk = to_model(dump, geometry)
    return SimpleNamespace(geometry=geometry, chunks={"dynamic": chunk})


def _valid_ops(dump: dict[str, object], geometry: Geometry) -> list[Op]:
    ops = []
    for op in all_ops(_model_view(dump, geometry)):  # type: ignore[arg-type]
        try:
            check_op(geometry, dump, op)
        except OpError:
            continue
        ops.append(op)
    return ops


def explore_c(source: KernelSource, geometry: Geometry, max_depth: int, max_states: int = 200_000) -> CSearch:
    """Breadth-first search on the C build from every new chunk of ``geometry``'s size, ``max_depth`` ops deep."""
    layout = source.layout
    build_ = build(source, geometry.block_bits, geometry.nr_pages)
    result = CSearch(layout, geometry, INVARIANTS_BY_LAYOUT[layout])
    frontier: deque[tuple[Geometry, tuple[Op, ...], dict[str, object]]] = deque()
    seen: set[str] = set()
    for root in _roots(geometry):
        chunk = KernelChunk(build_, root)
        dump = chunk.dump()
        chunk.close()
        note(result, build_, root, (), state_violations(layout, dump, root), chunk.findings)
        seen.add(_key(dump))
        frontier.append((root, (), dump))
    result.states_by_depth.append(len(frontier))
    for _depth in range(max_depth):
        next_frontier: deque[tuple[Geometry, tuple[Op, ...], dict[str, object]]] = deque()
        for root, path, dump in frontier:
            ops = _valid_ops(dump, root)
            allocations = {int(k): v for k, v in dynamic_chunk(dump)["allocations"].items()}
            ends = run_paths(build_, root, allocations, [(*path, op) for op in ops])
            pre = snapshots(dump, root)
            for op, end in zip(ops, ends):
                trace_ops = (*path, op)
                key = None if end.dump is None else _key(end.dump)
                violations = [] if end.dump is None or end.result is None else step_only_violations(
                    layout, pre, end.result, end.dump, root)
                # a state seen before had its state invariants noted then, on a path no longer than this one
                if end.dump is not None and end.result is not None and key not in seen:
                    violations += state_violations(layout, end.dump, root)
                note(result, build_, root, trace_ops, violations, list(end.findings))
                if key is None or any(f.kind == "sanitizer" for f in end.findings):
                    continue
                if key in seen:
                    continue
                seen.add(key)
                if len(seen) > max_states:
                    return result
                next_frontier.append((root, trace_ops, end.dump))
        result.states_by_depth.append(len(next_frontier))
        frontier = next_frontier
        if not frontier:
            break
    return result


def random_c(source: KernelSource, geometry: Geometry, walks: int, length: int, seed: int,
             result: CSearch) -> CSearch:
    """``walks`` seeded random walks of ``length`` ops on the C build; every step held to the invariants."""
    layout = source.layout
    rng = random.Random(seed)
    build_ = build_for(source, geometry, ChunkInit())
    for _ in range(walks):
        chunk = KernelChunk(build_, geometry)
        ops: list[Op] = []
        try:
            for _step in range(length):
                before = chunk.dump()
                op = random_op(_model_view(before, geometry), rng)  # type: ignore[arg-type]
                ops.append(op)
                mark = len(chunk.findings)
                try:
                    step = chunk.apply(op)
                except DriverGone:
                    note(result, chunk.build, geometry, tuple(ops), [], chunk.findings[mark:])
                    break
                result.random_steps += 1
                note(result, chunk.build, geometry, tuple(ops), step_violations(layout, before, step, chunk.dump(), geometry),
                      chunk.findings[mark:])
        finally:
            chunk.close()
    return result
