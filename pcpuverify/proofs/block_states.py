"""A closed set of block states: a lemma listed state by state, where no formula over a block's fields is inductive.

``mainline`` keeps stale scan hints (``docs/gallery.md`` 13 to 16, 18),
so the invariants that describe exact hints are broken, and the weaker ones
that remain are not inductive: every counterexample to induction starts from
a block whose hints no trace leaves (a scan hint inside a wholly free
block's contig hint, a ``left_free`` over allocated bits).  Every formula
lemma tried on them failed the same way (``docs/releases.md``).

A block's state is its bits of ``alloc_map`` and the fields of its
``pcpu_block_md``.  The lemma here says each block's state is one of a
finite set S.  S starts from the states reached on ``model/`` (the new
chunks', and the breadth-first search's when it ran) and grows by rounds:
each round, per kind of operation, enumerates every block state outside S
that one operation reaches from a well-formed chunk whose blocks are all in
S and which satisfies a strengthening (Bitwuzla, incremental:
each answer is blocked and the query asked again).  It stops at the first
round that adds none: S is then closed under every operation, relative to
that strengthening.  With initiation asked too, S and the strengthening
together are an inductive invariant, checked by the solver like any other;
S being a superset of what is reachable is all soundness needs, and its
extra states can only leave rows open.

S is grown together with its strengthening (``suite.py``): from every
invariant whose initiation holds and that no trace breaks, S is closed
relative to those kept, then Houdini drops those not inductive under S, and
again until Houdini drops none.  A row left NOT-INDUCTIVE is asked once more
under S and that strengthening; unsat, with the assumptions satisfiable, is
PROVED.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import z3

from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.translate import translator
from pcpuverify.symbolic.state import SymChunk, block_key

BlockState = tuple[int, ...]  # a block's bits of alloc_map (bit i of the block is bit i), then its md fields


def block_fields(chunk: SymChunk) -> list[str]:
    """The names of a block's metadata fields, in the order a ``BlockState`` holds them."""
    return [f.name for f in fields(chunk.md_blocks[0])]


def nr_blocks(geometry: Geometry) -> int:
    return geometry.nr_bits // geometry.block_bits


def block_terms(chunk: SymChunk, index: int) -> list[z3.BitVecRef]:
    """Block ``index``'s state as terms: its slice of ``alloc_map``, then its md fields."""
    b = chunk.geometry.block_bits
    md = chunk.md_blocks[index]
    return [z3.Extract(b * index + b - 1, b * index, chunk.alloc_map), *(getattr(md, f) for f in block_fields(chunk))]


def block_states_of(values: dict[str, Any], geometry: Geometry, names: list[str]) -> set[BlockState]:
    """The block states of one chunk given by its flat values (``conformance.model_fields``' keys)."""
    b = geometry.block_bits
    return {(int(values["alloc_map"]) >> (b * i) & ((1 << b) - 1),
             *(int(values[block_key(i, f)]) for f in names)) for i in range(nr_blocks(geometry))}


def block_in(chunk: SymChunk, index: int, states: Iterable[BlockState]) -> z3.BoolRef:
    """Block ``index`` of ``chunk`` is in one of ``states``: grouped by bitmap, which decides most of it."""
    terms = block_terms(chunk, index)
    by_bits: dict[int, list[BlockState]] = {}
    for s in states:
        by_bits.setdefault(s[0], []).append(s[1:])
    return z3.Or([z3.And(terms[0] == bits, z3.Or([z3.And([t == v for t, v in zip(terms[1:], rest)]) for rest in mds]))
                  for bits, mds in sorted(by_bits.items())])


def within(chunk: SymChunk, states: Iterable[BlockState]) -> z3.BoolRef:
    """Every block of ``chunk`` is in one of ``states``."""
    states = list(states)
    return z3.And([block_in(chunk, i, states) for i in range(nr_blocks(chunk.geometry))])


@dataclass(frozen=True)
class Closure:
    """How the set was grown: its size, the states each round added, the time; ``failed`` says why it is not
    closed (too many states, or a query the solver did not answer), and then it is no lemma."""

    states: frozenset[BlockState]
    added: tuple[int, ...]
    seconds: float
    failed: str = ""

    def describe(self) -> str:
        rounds = f"{len(self.added)} round" + ("s" if len(self.added) != 1 else "")
        return (f"a closed set of {len(self.states):,} block states ({rounds},"
                f" {self.seconds:.0f} s; block_states.py)")


def close(pre: SymChunk, steps: dict[str, tuple[list[z3.BoolRef], SymChunk]], seeds: set[BlockState],
          max_states: int, timeout: float) -> Closure:
    """Grow ``seeds`` until no step of ``steps`` (per kind: its assumptions on ``pre``, and its post-state) takes
    a chunk whose blocks are in the set to a block state outside it; at most ``max_states`` states."""
    tr = translator("bitwuzla")
    bw = tr.bw
    states = set(seeds)
    added: list[int] = []
    started = time.perf_counter()

    def failed(why: str) -> Closure:
        return Closure(frozenset(states), tuple(added), time.perf_counter() - started, why)

    while True:
        new: set[BlockState] = set()
        inside = within(pre, states)
        for kind, (assumptions, post) in steps.items():
            options = bw.Options()
            options.set(bw.Option.PRODUCE_MODELS, True)
            options.set(bw.Option.TIME_LIMIT_PER, int(timeout * 1000))
            solver = bw.Bitwuzla(tr.tm, options)
            for f in tr.translate_all([*assumptions, inside]):
                solver.assert_formula(f)
            for index in range(nr_blocks(pre.geometry)):
                terms = block_terms(post, index)
                values = tr.translate_all(terms)
                solver.push(1)
                solver.assert_formula(tr(z3.Not(block_in(post, index, states))))
                while (answer := solver.check_sat()) == bw.Result.SAT:
                    state = tuple(int(solver.get_value(v).value(10)) for v in values)
                    new.add(state)
                    if len(states) + len(new) > max_states:
                        return failed(f"more than {max_states:,} block states ({kind})")
                    solver.assert_formula(tr(z3.Or([t != v for t, v in zip(terms, state)])))
                solver.pop(1)
                if answer != bw.Result.UNSAT:
                    return failed(f"{kind}, block {index}: the solver did not answer ({answer})")
        added.append(len(new))
        if not new:
            return Closure(frozenset(states), tuple(added), time.perf_counter() - started)
        states |= new
