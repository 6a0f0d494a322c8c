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
state invariants are judged once per new state, not once per step.  The
search is breadth first over pairs of a state and an invariant that some
path to it keeps, so that trace is a shortest one, and a search that reaches
a fixpoint has tried every path that keeps an invariant (until 5 December
2026 it kept one path per state, the first found, and so missed a path that
kept an invariant to a state first reached through one that broke it).  A
search can only make a row VIOLATED, with a trace that replays; finding
nothing proves nothing.  Step invariants are not searched here
(``row_search.py`` walks them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
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
    complete: bool = False  # a fixpoint: no path that keeps a wanted invariant breaks it by what is not found

    @property
    def states(self) -> int:
        return sum(self.states_by_depth)

    @property
    def depth(self) -> int:
        """Every trace of at most this many operations was tried (when ``complete``: the deepest state's depth)."""
        return len(self.states_by_depth) - 1


@dataclass(slots=True)
class _Node:
    broken: frozenset[str]  # the wanted invariants this state breaks
    kept: frozenset[str] = frozenset()  # the wanted invariants some path from a new chunk keeps on every state
    # how each of ``kept`` came first: (those invariants, the parent's digest or a new chunk's geometry, the op)
    links: list[tuple[frozenset[str], bytes | Geometry, Op | None]] = field(default_factory=list)


def search(variant: str, geometry: Geometry, wanted: Collection[Obligation], max_states: int,
           on_state: Callable[[Reference], None] | None = None) -> Searched:
    """Breadth first from every new chunk of ``geometry`` until each of ``wanted`` is broken, the states run out
    (a fixpoint), or ``max_states`` distinct states have been seen; only whole depths count as searched.
    ``on_state`` is shown every distinct state once, when first reached (``block_states.py`` starts from them).

    The search runs on pairs of a state and an invariant that every state of some path to it keeps: an
    obligation is broken by a step from such a state, and a state is searched again, for those invariants only,
    when a later path keeps one that no earlier path kept (a state first reached only through states that broke
    an invariant can be reached later on a path that keeps it).  A state that no path reaches while keeping one
    of the wanted invariants is not searched past: nothing after it can break an obligation.
    """
    result = Searched()
    invariants = frozenset(inv for inv, _ in wanted)
    nodes: dict[bytes, _Node] = {}
    # the sets of invariants, one object each: a few dozen distinct sets among millions of states
    sets: dict[frozenset[str], frozenset[str]] = {}
    frontier: dict[bytes, tuple[Reference, frozenset[str]]] = {}  # a state, and the invariants it newly keeps
    for root in new_chunks(variant, geometry):
        broken = _shared(sets, _broken(root) & invariants)
        kept = _shared(sets, invariants - broken)
        nodes[_digest(root)] = _Node(broken, kept, [(kept, root.geometry, None)])
        frontier[_digest(root)] = (root, kept)
        if on_state is not None:
            on_state(root)
    result.states_by_depth.append(len(frontier))
    open_ = set(wanted)
    while frontier and open_:
        next_frontier: dict[bytes, tuple[Reference, frozenset[str]]] = {}
        hits: dict[Obligation, tuple[Geometry, list[Op]]] = {}
        new_states = 0
        for key, (ref, newly_kept) in frontier.items():
            for op in all_ops(ref):
                child = ref.copy()
                try:
                    child.apply(op)
                except OpError:  # a caller would not issue it
                    continue
                if child.corrupted_at is not None:  # a stray write: bitmap-access-in-bounds's, from here undefined
                    continue
                child_key = _digest(child)
                node = nodes.get(child_key)
                if node is None:
                    node = nodes[child_key] = _Node(_shared(sets, _broken(child) & invariants))
                    new_states += 1
                    if on_state is not None:
                        on_state(child)
                for inv in newly_kept & node.broken:
                    if (inv, op_name(op)) in open_ and (inv, op_name(op)) not in hits:
                        start, ops = _path(nodes, key, inv)
                        hits[(inv, op_name(op))] = (start, [*ops, op])
                gained = newly_kept - node.broken - node.kept
                if gained:
                    node.kept = _shared(sets, node.kept | gained)
                    node.links.append((_shared(sets, gained), key, op))
                    _, before = next_frontier.get(child_key, (child, frozenset()))
                    next_frontier[child_key] = (child, _shared(sets, before | gained))
            if len(nodes) > max_states:
                _settle(result, variant, hits, open_)
                return result  # this depth cut short: not counted
        _settle(result, variant, hits, open_)
        if not next_frontier:  # a fixpoint: nothing new one operation on
            result.complete = True
            break
        result.states_by_depth.append(new_states)
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


def _path(nodes: dict[bytes, _Node], key: bytes, inv: str) -> tuple[Geometry, list[Op]]:
    """The new chunk and the operations of the first path found to a state that keeps ``inv`` on every state."""
    ops: list[Op] = []
    while True:
        parent, op = next((parent, op) for those, parent, op in nodes[key].links if inv in those)
        if op is None:
            assert isinstance(parent, Geometry)
            return parent, ops[::-1]
        assert isinstance(parent, bytes)
        ops.append(op)
        key = parent


def _settle(result: Searched, variant: str, hits: dict[Obligation, tuple[Geometry, list[Op]]],
            open_: set[Obligation]) -> None:
    """Record this depth's hits, each from the new chunk its path starts from."""
    for (inv, kind), (start, ops) in hits.items():
        result.found[(inv, kind)] = Trace(variant, start, ChunkInit(), tuple(ops), inv)
        open_.discard((inv, kind))
