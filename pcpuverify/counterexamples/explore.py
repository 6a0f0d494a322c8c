"""Exhaustive breadth-first exploration of the reference's reachable states on tiny geometries.

An independent route to the shortest violation of each invariant: no
solver, every operation with every argument from every reachable state,
states deduplicated by everything the next steps can depend on.  Breadth
first, so the first violation found of each invariant is a shortest one;
among equally short ones, the first in the order of ``all_ops`` (smaller
sizes and alignments first).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from pcpuverify.invariants.check import check_state, check_step
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, Depopulate, Free, Op, Populate
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.trace import Trace


def all_ops(ref: Reference) -> Iterator[Op]:
    """Every operation a caller could issue in ``ref``'s dynamic chunk, smallest arguments first."""
    g = ref.geometry
    chunk = ref.chunks["dynamic"]
    for bits in range(1, g.nr_bits + 1):
        align = 1
        while align <= g.block_bits:
            for pop_only in (False, True):
                yield Alloc(bits, align, pop_only)
            align *= 2
    for bit_off in sorted(chunk.allocations):
        yield Free(bit_off)
    for start in range(g.nr_pages):
        for end in range(start + 1, g.nr_pages + 1):
            yield Populate(start, end)
            yield Depopulate(start, end)


@dataclass
class Exploration:
    """What the search saw: reachable states by depth and the first (shortest) trace per broken invariant."""

    variant: str
    geometry: Geometry
    states_by_depth: list[int] = field(default_factory=list)
    shortest: dict[str, Trace] = field(default_factory=dict)
    complete: bool = True  # False when max_states cut the search short

    @property
    def states(self) -> int:
        return sum(self.states_by_depth)


def new_chunks(variant: str, geometry: Geometry) -> list[Reference]:
    """A new chunk with every subset of its pages populated (as the bounded model checker starts)."""
    return [
        Reference(
            variant,
            Geometry(geometry.block_bits, geometry.nr_pages,
                     tuple(p for p in range(geometry.nr_pages) if (subset >> p) & 1)),
            ChunkInit(),
        )
        for subset in range(1 << geometry.nr_pages)
    ]


def explore(variant: str, geometry: Geometry, max_depth: int, max_states: int = 2_000_000) -> Exploration:
    """Breadth-first search from every new chunk of ``geometry``'s size, ``max_depth`` ops deep."""
    roots = new_chunks(variant, geometry)
    result = Exploration(variant, geometry, [len(roots)])
    for root in roots:
        for v in check_state(root):
            result.shortest.setdefault(v.invariant, Trace(variant, root.geometry, ChunkInit(), (), v.invariant))
    seen = {root.key() for root in roots}
    frontier: deque[tuple[Reference, tuple[Op, ...]]] = deque((root, ()) for root in roots)
    for _depth in range(max_depth):
        next_frontier: deque[tuple[Reference, tuple[Op, ...]]] = deque()
        for ref, ops in frontier:
            for op in all_ops(ref):
                child = ref.copy()
                try:
                    _, violations = check_step(child, op)
                except OpError:
                    continue
                trace_ops = (*ops, op)
                for v in violations:
                    if v.invariant not in result.shortest:
                        result.shortest[v.invariant] = Trace(
                            variant, ref.geometry, ChunkInit(), trace_ops, v.invariant
                        )
                key = child.key()
                if key in seen or child.corrupted_at is not None:
                    continue
                seen.add(key)
                if len(seen) > max_states:
                    result.complete = False
                    return result
                next_frontier.append((child, trace_ops))
        result.states_by_depth.append(len(next_frontier))
        frontier = next_frontier
        if not frontier:
            break
    return result
