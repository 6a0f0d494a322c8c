"""Breadth-first search on ``model/`` for the obligations bounded model checking and the random walks leave open.

Some of ``mainline``'s violations need 8 to 12 operations on one 8-bit
block (``docs/gallery.md`` 15: a scan hint kept inside a larger freed area,
then promoted), past the depth a suite affords the solver and rarely met by
a random walk.  On a small chunk the model can try every operation from
every state instead: from every new chunk (every subset of its pages
populated), each operation ``explore.all_ops`` issues, states deduplicated
by ``Reference.key()``, until a budget of distinct states is spent.

One search serves every state invariant and every kind of operation at
once.  It records, per obligation (an invariant and the kind of operation
that breaks it), the first step from a state whose path from the new chunk
kept the invariant to a state that breaks it: what bounded model checking
asks (``suite.Breach.kept``) and what a carried witness must show.  The
state invariants are judged once per new state, not once per step.  Breadth
first, that trace is a shortest one among the paths the search keeps (one
per state, the first found: a state first reached by a path that broke an
invariant is not searched again for a path that kept it).  A search can
only make a row VIOLATED, with a trace that replays; finding nothing proves
nothing.  Step invariants are not searched here (``row_search.py`` walks
them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field

from pcpuverify.counterexamples.explore import all_ops, new_chunks
from pcpuverify.invariants.check import check_state
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import ChunkInit, Op, op_name
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.trace import Trace

Obligation = tuple[str, str]  # (invariant, kind of operation)


@dataclass
class Searched:
    """What one breadth-first search found, and how far it got."""

    found: dict[Obligation, Trace] = field(default_factory=dict)
    states_by_depth: list[int] = field(default_factory=list)  # distinct new states per depth; [0] the new chunks
    complete: bool = False  # every reachable state seen (a fixpoint): nothing reachable breaks what is not found

    @property
    def states(self) -> int:
        return sum(self.states_by_depth)

    @property
    def depth(self) -> int:
        """Every trace of at most this many operations was tried (when ``complete``: the deepest state's depth)."""
        return len(self.states_by_depth) - 1


@dataclass(slots=True)
class _Node:
    parent: bytes | Geometry  # the parent state's digest; for a new chunk its geometry (which pages are populated)
    op: Op | None  # None for a new chunk
    broken: frozenset[str]  # the state invariants this state breaks
    ever: frozenset[str]  # ... or any state on its path from the new chunk breaks


def search(variant: str, geometry: Geometry, wanted: Collection[Obligation], max_states: int) -> Searched:
    """Breadth first from every new chunk of ``geometry`` until each of ``wanted`` is broken, the states run out
    (a fixpoint), or ``max_states`` distinct states have been seen; only whole depths count as searched."""
    result = Searched()
    nodes: dict[bytes, _Node] = {}
    # the sets of broken invariants, one object each: a few dozen distinct sets among millions of states
    sets: dict[frozenset[str], frozenset[str]] = {}
    frontier: list[tuple[bytes, Reference]] = []
    for root in new_chunks(variant, geometry):
        broken = _shared(sets, _broken(root))
        nodes[_digest(root)] = _Node(root.geometry, None, broken, broken)
        frontier.append((_digest(root), root))
    result.states_by_depth.append(len(frontier))
    open_ = set(wanted)
    while frontier and open_:
        next_frontier: list[tuple[bytes, Reference]] = []
        hits: dict[Obligation, tuple[Geometry, list[Op]]] = {}
        for key, ref in frontier:
            node = nodes[key]
            for op in all_ops(ref):
                child = ref.copy()
                try:
                    child.apply(op)
                except OpError:  # a caller would not issue it
                    continue
                if child.corrupted_at is not None:  # a stray write: bitmap-access-in-bounds's, from here undefined
                    continue
                child_key = _digest(child)
                known = nodes.get(child_key)
                broken = known.broken if known is not None else _shared(sets, _broken(child))
                for inv in broken - node.ever:
                    if (inv, op_name(op)) in open_ and (inv, op_name(op)) not in hits:
                        start, ops = _path(nodes, key)
                        hits[(inv, op_name(op))] = (start, [*ops, op])
                if known is None:
                    nodes[child_key] = _Node(key, op, broken, _shared(sets, node.ever | broken))
                    next_frontier.append((child_key, child))
            if len(nodes) > max_states:
                _settle(result, variant, hits, open_)
                return result  # this depth cut short: not counted
        _settle(result, variant, hits, open_)
        if not next_frontier:  # a fixpoint: nothing new one operation on
            result.complete = True
            break
        result.states_by_depth.append(len(next_frontier))
        frontier = next_frontier
    return result


def _shared(sets: dict[frozenset[str], frozenset[str]], names: frozenset[str]) -> frozenset[str]:
    return sets.setdefault(names, names)


def _broken(ref: Reference) -> frozenset[str]:
    return frozenset(v.invariant for v in check_state(ref))


def _digest(ref: Reference) -> bytes:
    """``ref.key()`` in 16 bytes (a key of ``mainline``'s at 1x8 holds about 600 bytes of tuples; a search to a
    fixpoint there would keep millions).  Two states that collide (odds about 1e-26 among 5 million) would only
    hide one from the search, which can make it miss a violation, never report a false one: every trace it gives
    is replayed."""
    return hashlib.blake2b(repr(ref.key()).encode(), digest_size=16).digest()


def _path(nodes: dict[bytes, _Node], key: bytes) -> tuple[Geometry, list[Op]]:
    """The new chunk a state's recorded path starts from, and its operations."""
    ops: list[Op] = []
    node = nodes[key]
    while node.op is not None:
        ops.append(node.op)
        assert isinstance(node.parent, bytes)
        node = nodes[node.parent]
    assert isinstance(node.parent, Geometry)
    return node.parent, ops[::-1]


def _settle(result: Searched, variant: str, hits: dict[Obligation, tuple[Geometry, list[Op]]],
            open_: set[Obligation]) -> None:
    """Record this depth's hits, each from the new chunk its path starts from."""
    for (inv, kind), (start, ops) in hits.items():
        result.found[(inv, kind)] = Trace(variant, start, ChunkInit(), tuple(ops), inv)
        open_.discard((inv, kind))
