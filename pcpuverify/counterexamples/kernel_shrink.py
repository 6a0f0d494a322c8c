"""Shrink a trace found on a C build: fewer operations, the same invariant (or sanitizer / warning finding) broken.

The C counterpart of the first two reductions of ``minimize.py``
(truncation after the breaking step, removal of operations), replayed on
the C build: frees name allocations, not offsets -- a free is linked to
the alloc whose allocation it frees, made concrete on each candidate's
replay (dropped with its alloc, or when that alloc failed), and an op a
caller could not issue in the candidate's state (``harness.check_op``) is
dropped.  The result is 1-minimal under removing one operation (with its
free); arguments and the geometry are not lowered, as ``minimize.py``
does for the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from pcpuverify.counterexamples.kernel_search import CTrace, step_violations
from pcpuverify.kernel.build import Build
from pcpuverify.kernel.harness import DriverGone, KernelChunk
from pcpuverify.model.ops import Alloc, Free, Op
from pcpuverify.model.reference import OpError


@dataclass(frozen=True)
class FreeOf:
    """A free of whatever the item at index ``alloc`` (an Alloc) returned."""

    alloc: int


Item = Op | FreeOf


def _replay(build: Build, trace: CTrace, items: list[tuple[int, Item]]) -> tuple[tuple[Op, ...], str] | None:
    """The concrete ops up to the first step that breaks ``trace.violates``, with its message; None if none does."""
    chunk = KernelChunk(build, trace.geometry)
    returned: dict[int, int] = {}
    ops: list[Op] = []
    try:
        for sid, item in items:
            if isinstance(item, FreeOf):
                if item.alloc not in returned:
                    continue
                op: Op = Free(returned.pop(item.alloc))
            else:
                op = item
            before = chunk.dump()
            mark = len(chunk.findings)
            try:
                step = chunk.apply(op)
            except OpError:
                continue
            except DriverGone:
                ops.append(op)
                found = [f for f in chunk.findings[mark:] if f.kind == trace.violates]
                return (tuple(ops), found[0].summary) if found else None
            ops.append(op)
            if isinstance(op, Alloc) and step.bit_off is not None:
                returned[sid] = step.bit_off
            messages = [v.describe() for v in step_violations(build.layout, before, step, chunk.dump(), trace.geometry)
                        if v.invariant == trace.violates]
            messages += [f.summary for f in chunk.findings[mark:] if f.kind == trace.violates]
            if messages:
                return tuple(ops), messages[0]
    finally:
        chunk.close()
    return None


def _link_allocs(build: Build, trace: CTrace) -> list[tuple[int, Item]]:
    """Replay once to learn which alloc returned each freed offset, then link the frees."""
    chunk = KernelChunk(build, trace.geometry)
    live: dict[int, int] = {}
    items: list[tuple[int, Item]] = []
    try:
        for sid, op in enumerate(trace.ops):
            if isinstance(op, Free) and op.bit_off in live:
                items.append((sid, FreeOf(live.pop(op.bit_off))))
            else:
                items.append((sid, op))
            try:
                step = chunk.apply(op)
            except (OpError, DriverGone):
                break
            if isinstance(op, Alloc) and step.bit_off is not None:
                live[step.bit_off] = sid
    finally:
        chunk.close()
    return items + [(sid, op) for sid, op in enumerate(trace.ops) if sid >= len(items)]


def reproduce(build: Build, trace: CTrace) -> tuple[tuple[Op, ...], str] | None:
    """Replay ``trace`` on the C build: the ops up to the first step breaking ``trace.violates`` and its message, or None."""
    return _replay(build, trace, list(enumerate(trace.ops)))


def shrink(build: Build, trace: CTrace) -> CTrace:
    """``trace`` with operations removed while the C still breaks ``trace.violates``."""
    items = _link_allocs(build, trace)
    best = _replay(build, trace, items)
    if best is None:
        return trace
    changed = True
    while changed:
        changed = False
        for i in range(len(items)):
            sid = items[i][0]
            candidate = [it for j, it in enumerate(items)
                         if j != i and not (isinstance(it[1], FreeOf) and it[1].alloc == sid)]
            found = _replay(build, trace, candidate)
            if found is not None and len(found[0]) < len(best[0]):
                items, best, changed = candidate, found, True
                break
    return CTrace(trace.geometry, best[0], trace.violates, best[1])
