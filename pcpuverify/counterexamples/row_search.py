"""A random search on ``model/`` for a violation beyond the bounded depth, for one obligation.

Bounded model checking settles a failed consecution only up to its depth,
and the shortest violations of the released allocators are longer (9
operations for linux-4.14's ``chunk-hint-accurate-in-one-block``/free at
1x8, where depth 4 is what a suite affords).  A walk of random operations
from a new chunk is cheap on the reference, so the suite asks for one here
before it leaves a row NOT-INDUCTIVE.

A walk counts for an obligation (an invariant and the kind of the
operation that breaks it) only where that invariant *first* breaks, at an
operation of that kind: what bounded model checking asks (``Breach.kept``)
and what a carried witness must show (``witness.carry``).  The trace found
is then minimised under the same condition, at the same geometry (a
smaller chunk is another obligation).  A search can only make a row
VIOLATED, with a trace that replays; finding nothing proves nothing.

Deterministic: the walks of one obligation come from a generator seeded
with the suite's seed, the invariant and the kind, so a rerun finds the
same trace.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from pcpuverify.counterexamples.minimize import Candidate, Minimizer
from pcpuverify.invariants.check import check_step, first_violation
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import ChunkInit, Op, op_name
from pcpuverify.model.random_ops import random_op
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.trace import Trace

WALK_LENGTH = 40  # operations per walk: longer than any finding known (the deepest is 15 at 3x8)


def small_size(rng: random.Random, nr_bits: int) -> int:
    """An allocation's size, mostly a few bits: the findings need small areas side by side, which sizes drawn
    uniformly up to the chunk's size (``random_ops.uniform_size``) rarely give past one block."""
    return min(nr_bits, 1 + int(rng.expovariate(1 / 3))) if rng.random() < 0.9 else rng.randint(1, nr_bits)


@dataclass(frozen=True)
class Found:
    trace: Trace  # minimised; its first violation of ``trace.violates`` is its last operation
    walks: int  # the walks it took to find it


class RowMinimizer(Minimizer):
    """The minimiser's reductions, keeping the geometry and the kind of the operation that first breaks."""

    def __init__(self, trace: Trace, name: str, kind: str) -> None:
        self.kind = kind
        super().__init__(trace, name)

    def evaluate(self, candidate: Candidate) -> tuple[Candidate, int | None]:
        kept, at = super().evaluate(candidate)
        if at is None or at < 0 or op_name(self.concrete_ops(kept)[at]) != self.kind:
            return kept, None
        return kept, at

    def shrink_geometry(self) -> bool:
        return False  # the obligation's geometry is the point: a trace on a smaller chunk settles another row


def search(variant: str, geometry: Geometry, invariant: str, kind: str, walks: int, seed: int) -> Found | None:
    """The first of ``walks`` random walks (``WALK_LENGTH`` operations each) whose first violation of
    ``invariant`` is an operation of ``kind``, minimised; None when none is."""
    rng = random.Random(f"{seed}:{variant}:{geometry.name}:{invariant}:{kind}")
    for walk in range(1, walks + 1):
        populated = tuple(p for p in range(geometry.nr_pages) if rng.random() < 0.5)
        start = replace(geometry, populated=populated)
        ops = _first_breaking_walk(Reference(variant, start, ChunkInit()), rng, invariant)
        if ops is not None and op_name(ops[-1]) == kind:
            trace = Trace(variant, start, ChunkInit(), ops, invariant)
            found = RowMinimizer(trace, invariant, kind).run()
            assert first_violation(found, invariant) == len(found.ops) - 1
            return Found(found, walk)
    return None


def walk_states(variant: str, geometry: Geometry, walks: int, seed: int,
                on_state: Callable[[Reference], None]) -> int:
    """``walks`` random walks as the search takes them (``WALK_LENGTH`` operations from a new chunk with random
    pages populated), each state reached shown to ``on_state``; the operations applied.  A walk ends at an
    operation the model refuses or at a stray write (past it the state means nothing).  The closed sets of
    ``block_states.py`` start from these states: each one listed here is one the solver need not find."""
    rng = random.Random(f"{seed}:{variant}:{geometry.name}:walk_states")
    steps = 0
    for _ in range(walks):
        populated = tuple(p for p in range(geometry.nr_pages) if rng.random() < 0.5)
        ref = Reference(variant, replace(geometry, populated=populated), ChunkInit())
        on_state(ref)
        for _ in range(WALK_LENGTH):
            try:
                ref.apply(random_op(ref, rng, small_size))
            except OpError:
                break
            if ref.corrupted_at is not None:
                break
            steps += 1
            on_state(ref)
    return steps


def _first_breaking_walk(ref: Reference, rng: random.Random, invariant: str) -> tuple[Op, ...] | None:
    """The walk's operations up to the first that breaks ``invariant``; None if none of ``WALK_LENGTH`` does."""
    ops: list[Op] = []
    for _ in range(WALK_LENGTH):
        op = random_op(ref, rng, small_size)
        try:
            _, violations = check_step(ref, op, invariant)
        except OpError:  # a caller would not issue it (e.g. a page range the model refuses): the walk ends
            return None
        ops.append(op)
        if violations:
            return tuple(ops)
        if ref.corrupted_at is not None:  # past a stray write the state means nothing
            return None
    return None
