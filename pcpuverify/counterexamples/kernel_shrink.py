"""Minimise a trace found on a C build: ``minimize.py``'s reductions, every candidate replayed on the C.

``CMinimizer`` is ``minimize.Reductions`` with the C build of one source
as the place candidates run: frees name allocations, not offsets (a free
is linked to the alloc whose allocation it frees and made concrete on each
candidate's replay, dropped with its alloc or when that alloc failed), a
candidate with an op a caller could not issue in its state
(``harness.check_op``) is refused, as the reference refuses one, and so is
a geometry the build cannot take.  A smaller geometry is a new build of the
same source (cached, ``kernel/build.py``).

What is kept broken is an invariant of the build's layout
(``kernel_search.INVARIANTS_BY_LAYOUT``) or a finding of the C itself:
``sanitizer`` (an AddressSanitizer or UBSan report) or ``warning`` (a
``WARN_ON``).

``shrink`` (what ``explore`` does to each finding) removes operations
only, at the finding's geometry; ``minimize_on_c`` (``minimize --source``)
runs every reduction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cache

from pcpuverify.counterexamples.kernel_search import CTrace, state_violations, step_violations
from pcpuverify.counterexamples.minimize import Candidate, FreeOf, Reductions, Step
from pcpuverify.invariants.check import invariant
from pcpuverify.kernel.build import Build
from pcpuverify.kernel.harness import DriverGone, KernelChunk, build_for
from pcpuverify.kernel.source import KernelSource, SourceError
from pcpuverify.model.geometry import Geometry, GeometryError
from pcpuverify.model.ops import Alloc, Free, Init, Op
from pcpuverify.model.reference import OpError
from pcpuverify.model.trace import TraceError

FINDING_KINDS = ("sanitizer", "warning")


def _breaks(name: str, chunk: KernelChunk, before: dict[str, object] | None, step: object, mark: int) -> str | None:
    """The message of ``name`` broken by the chunk's last step (``before`` None: its initial state), else None."""
    found = [f.summary for f in chunk.findings[mark:] if f.kind == name]
    if name not in FINDING_KINDS:
        after = chunk.dump()
        violations = (state_violations(chunk.layout, after, chunk.geometry) if before is None
                      else step_violations(chunk.layout, before, step, after, chunk.geometry))  # type: ignore[arg-type]
        found = [v.describe() for v in violations if v.invariant == name] + found
    return found[0] if found else None


def run_candidate(build_: Build, candidate: Candidate, name: str) -> tuple[Candidate, tuple[Op, ...], int | None, str]:
    """Replay ``candidate`` on the C up to the first step that breaks ``name``.

    Returns the steps kept (frees of nothing dropped), their concrete ops,
    the index of the breaking step (-1: the initial state; None: no step
    breaks it) and its message.  OpError for an op a caller could not issue.
    """
    try:
        chunk = KernelChunk(build_, candidate.geometry, candidate.init)
    except DriverGone as e:  # a sanitizer report while setting the chunk up: a finding of the initial state
        return replace(candidate, steps=()), (), -1 if name == "sanitizer" else None, str(e).split(": ", 1)[-1]
    returned: dict[int, int] = {}
    kept: list[Step] = []
    ops: list[Op] = []

    def outcome(at: int | None, message: str) -> tuple[Candidate, tuple[Op, ...], int | None, str]:
        return replace(candidate, steps=tuple(kept)), tuple(ops), at, message

    try:
        message = _breaks(name, chunk, None, None, 0)
        if message is not None:
            return outcome(-1, message)
        for sid, item in candidate.steps:
            if isinstance(item, FreeOf):
                off = returned.pop(item.alloc, None)
                if off is None:
                    continue  # its alloc was removed or failed: a caller frees only what it got
                op: Op = Free(off, item.reserved)
            else:
                op = item
            before = chunk.dump()
            mark = len(chunk.findings)
            step = None
            try:
                step = chunk.apply(op)
            except DriverGone:
                pass
            kept.append((sid, item))
            ops.append(op)
            if step is None:  # the driver ended: a sanitizer report, and nothing after it runs
                found = [f.summary for f in chunk.findings[mark:] if f.kind == name]
                return outcome(len(ops) - 1, found[0]) if found else outcome(None, "")
            if isinstance(op, Alloc) and step.bit_off is not None:
                returned[sid] = step.bit_off
            message = _breaks(name, chunk, before, step, mark)
            if message is not None:
                return outcome(len(ops) - 1, message)
    finally:
        chunk.close()
    return outcome(None, "")


def linked(build_: Build, trace: CTrace) -> Candidate:
    """``trace`` with each free linked to the alloc whose allocation it frees, learnt by replaying it on the C.

    OpError when an op is one a caller could not issue (a free of no live allocation among them).
    """
    try:
        chunk = KernelChunk(build_, trace.geometry, trace.init)
    except DriverGone:  # the setup itself ends in a sanitizer report: no op runs, none to link
        return Candidate(trace.geometry, trace.init, tuple(enumerate(trace.ops)))  # type: ignore[arg-type]
    live: dict[tuple[bool, int], int] = {}
    steps: list[Step] = []
    try:
        for sid, op in enumerate(trace.ops):
            if isinstance(op, Free) and (op.reserved, op.bit_off) in live:
                steps.append((sid, FreeOf(live.pop((op.reserved, op.bit_off)), op.reserved)))
            else:
                steps.append((sid, op))  # type: ignore[arg-type]
            try:
                step = chunk.apply(op)
            except OpError as e:
                raise OpError(f"ops[{sid}]: {e}") from None
            except DriverGone:
                break  # nothing after a sanitizer report runs: the rest is cut by the first replay
            if isinstance(op, Alloc) and step.bit_off is not None:
                live[(op.reserved, step.bit_off)] = sid
    finally:
        chunk.close()
    return Candidate(trace.geometry, trace.init, tuple(steps))


class CMinimizer(Reductions):
    """The reductions of ``minimize.py``, every candidate replayed on the C build ``build_for`` gives for its geometry."""

    def __init__(self, trace: CTrace, build_for: Callable[[Geometry, Init], Build]) -> None:
        self.build_for = build_for
        super().__init__(linked(build_for(trace.geometry, trace.init), trace), trace.violates)

    def evaluate(self, candidate: Candidate) -> tuple[Candidate, int | None]:
        try:
            build_ = self.build_for(candidate.geometry, candidate.init)
        except SourceError as e:  # a geometry this build cannot take: refused, as the reference refuses one
            raise GeometryError(str(e)) from None
        kept, _, at, _ = run_candidate(build_, candidate, self.name)
        return kept, at

    def concrete_ops(self, candidate: Candidate) -> tuple[Op, ...]:
        return run_candidate(self.build_for(candidate.geometry, candidate.init), candidate, self.name)[1]

    def result(self) -> CTrace:
        """The best candidate as a C trace: its concrete ops and the message of the step that breaks it."""
        best = self.best
        _, ops, at, message = run_candidate(self.build_for(best.geometry, best.init), best, self.name)
        assert at is not None, "the minimiser keeps only candidates that break the invariant"
        return CTrace(best.geometry, ops, self.name, message, best.init)


def reproduce(build_: Build, trace: CTrace) -> tuple[tuple[Op, ...], str] | None:
    """Replay ``trace`` on the C build: the ops up to the first step breaking ``trace.violates`` and its message, or None.

    TraceError when an op is one a caller could not issue (a free of no live allocation among them).
    """
    candidate = Candidate(trace.geometry, trace.init, tuple(enumerate(trace.ops)))  # type: ignore[arg-type]
    try:
        _, ops, at, message = run_candidate(build_, candidate, trace.violates)
    except OpError as e:
        raise TraceError(f"the trace does not replay on the C: {e}") from None
    return None if at is None else (ops, message)


def breaks_after(build_: Build, trace: CTrace, first: int) -> list[tuple[int, str]]:
    """The steps after ``first`` that break the state invariant ``trace.violates`` on the C again, each from a state
    where it holds, with their messages (as ``TraceReplay.breaks`` on the model: a row's claim is consecution, and
    a later break refutes it too).  None for a finding of the C or a step invariant: ``reproduce`` reports those.

    TraceError when an op is one a caller could not issue.
    """
    if first >= len(trace.ops) - 1 or trace.violates in FINDING_KINDS or invariant(trace.violates).kind != "state":
        return []
    chunk = KernelChunk(build_, trace.geometry, trace.init)
    found: list[tuple[int, str]] = []
    held = True
    try:
        for index, op in enumerate(trace.ops):
            try:
                chunk.apply(op)
            except OpError as e:
                raise TraceError(f"the trace does not replay on the C: ops[{index}]: {e}") from None
            except DriverGone:  # a sanitizer report: nothing after it runs
                break
            broken = [v.describe() for v in state_violations(chunk.layout, chunk.dump(), chunk.geometry)
                      if v.invariant == trace.violates]
            if broken and held and index > first:
                found.append((index, broken[0]))
            held = not broken
    finally:
        chunk.close()
    return found


def shrink(build_: Build, trace: CTrace) -> CTrace:
    """``trace`` with operations removed (ddmin) while the C still breaks ``trace.violates``; the geometry kept."""
    minimizer = CMinimizer(trace, lambda _geometry, _init: build_)
    minimizer.remove_operations()
    return minimizer.result()


def minimize_on_c(source: KernelSource, trace: CTrace) -> CTrace:
    """A 1-minimal trace breaking ``trace.violates`` on the C build of ``source`` (every reduction of minimize.py).

    NotACounterexample when the trace does not break it on the C.
    """
    minimizer = CMinimizer(trace, cache(lambda geometry, init: build_for(source, geometry, init)))
    minimizer.reduce()
    return minimizer.result()
