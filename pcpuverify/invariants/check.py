"""Checking every invariant on a reference: after each step, and over a whole trace."""

from __future__ import annotations

from dataclasses import dataclass

from pcpuverify.invariants import hints, maps, population, release_hints, steps
from pcpuverify.invariants.applicability import applies, covers
from pcpuverify.invariants.base import REGISTRY, ChunkSnapshot, Invariant, Violation
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.ops import Op
from pcpuverify.model.reference import OpError, Reference, StepResult
from pcpuverify.model.trace import Trace

# Importing the modules registers their invariants; this is their order.
_MODULES = (hints, maps, population, steps, release_hints)
ALL_INVARIANTS: tuple[Invariant, ...] = tuple(REGISTRY.values())  # every layout's, in this order
# The invariants of the 2017 chunk: what the Z3 suites, the layout proofs and the
# gate's rows cover.  check_state and check_step pick each chunk's own (applicability).
INVARIANTS: tuple[Invariant, ...] = tuple(i for i in ALL_INVARIANTS if covers(i, PcpuChunk))
STATE_INVARIANTS = tuple(i for i in INVARIANTS if i.kind == "state")
STEP_INVARIANTS = tuple(i for i in INVARIANTS if i.kind == "step")
_ALL_STATE = tuple(i for i in ALL_INVARIANTS if i.kind == "state")
_ALL_STEP = tuple(i for i in ALL_INVARIANTS if i.kind == "step")


def invariants_for(layout: type) -> tuple[Invariant, ...]:
    """The invariants that apply to chunks of class ``layout`` (``applicability``), in the registry's order."""
    return tuple(i for i in ALL_INVARIANTS if covers(i, layout))


class UnknownInvariant(ValueError):
    """An invariant name that is not registered."""


def invariant(name: str) -> Invariant:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownInvariant(
            f"unknown invariant {name!r}; choose one of: {', '.join(REGISTRY)}"
        ) from None


def check_state(ref: Reference, only: str | None = None) -> list[Violation]:
    """Every state invariant ``ref``'s chunks break (``only``: just that one, if it is a state invariant)."""
    return [
        v
        for chunk in ref.chunks.values()
        for inv in _ALL_STATE
        if (only is None or inv.name == only) and applies(inv, chunk)
        for v in inv.violations(ref.alloc, chunk)
    ]


def check_step(ref: Reference, op: Op, only: str | None = None) -> tuple[StepResult, list[Violation]]:
    """Apply ``op`` to ``ref`` and return what it returned with every invariant it broke (``only``: with whether
    it broke that one, for a search that follows one invariant).

    Once a step has written outside a bitmap the state is undefined, as in
    C: from then on only that write is reported, and nothing that reads the
    state after it.
    """
    chunk = ref.chunk(op.reserved)
    before = ChunkSnapshot.of(chunk)
    sound_before = ref.corrupted_at is None
    result = ref.apply(op)
    sound_after = ref.corrupted_at is None
    found = [
        v
        for inv in _ALL_STEP
        if (only is None or inv.name == only) and applies(inv, chunk) and sound_before
        and (sound_after or not inv.reads_post_state)
        for v in inv.violations(ref.alloc, before, result, chunk)
    ]
    return result, found + (check_state(ref, only) if sound_after else [])


@dataclass(frozen=True)
class Replayed:
    """One replayed step: the op, its result, the state after it and the invariants it broke."""

    index: int
    result: StepResult
    state: dict[str, object]
    violations: tuple[Violation, ...]


@dataclass(frozen=True)
class TraceReplay:
    """A trace replayed on the reference: the initial state and its violations, then every step.

    ``first`` is the one answer to "which step first breaks this invariant"
    that the replay command, the minimiser and the check all use.
    """

    trace: Trace
    initial_state: dict[str, object]
    initial: list[Violation]
    steps: list[Replayed]

    @property
    def found(self) -> set[str]:
        """Every invariant the replay breaks, anywhere."""
        return {v.invariant for v in self.initial} | {v.invariant for s in self.steps for v in s.violations}

    def first(self, name: str) -> int | None:
        """The index of the first step after which invariant ``name`` is broken (-1: the initial state)."""
        if any(v.invariant == name for v in self.initial):
            return -1
        return next((s.index for s in self.steps if any(v.invariant == name for v in s.violations)), None)

    def breaks(self, name: str) -> list[int]:
        """Every step that breaks invariant ``name`` from a state where it holds (-1: the initial state breaks it).

        A state invariant broken by one step can hold again after a later one
        and be broken again: each such step is a break.  A step invariant
        judges the step alone, so each step that violates it is one.
        """
        step_invariant = invariant(name).kind == "step"
        held = not any(v.invariant == name for v in self.initial)
        found = [] if held else [-1]
        for s in self.steps:
            broken = any(v.invariant == name for v in s.violations)
            if broken and (held or step_invariant):
                found.append(s.index)
            held = not broken
        return found

    def first_broken(self) -> str | None:
        """The first invariant the replay breaks: the initial state's first, else the earliest step's first."""
        for violations in [self.initial, *(s.violations for s in self.steps)]:
            if violations:
                return violations[0].invariant
        return None


def replay(trace: Trace) -> TraceReplay:
    """Replay ``trace`` on the reference: violations of the initial state, then every step."""
    ref = Reference(trace.variant, trace.geometry, trace.init)
    initial_state = ref.dump()
    initial = check_state(ref)
    steps_done = []
    for index, op in enumerate(trace.ops):
        try:
            result, found = check_step(ref, op)
        except OpError as e:
            raise OpError(f"ops[{index}]: {e}") from None
        steps_done.append(Replayed(index, result, ref.dump(), tuple(found)))
    return TraceReplay(trace, initial_state, initial, steps_done)


def first_violation(trace: Trace, name: str) -> int | None:
    """The index of the first step after which invariant ``name`` is broken (-1: the initial state)."""
    return replay(trace).first(name)


def last_step_breaks(trace: Trace, name: str) -> bool:
    """Whether the last operation of ``trace`` breaks invariant ``name`` from a state where it holds.

    That is the negation of a consecution claim over reachable states, which
    is what a PROVED row asserts, whether or not an earlier step broke the
    invariant too.
    """
    return bool(trace.ops) and replay(trace).breaks(name)[-1:] == [len(trace.ops) - 1]
