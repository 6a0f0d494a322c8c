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
chunks', the breadth-first search's when it ran, and those of random walks)
and grows by rounds:
each round, per kind of operation, enumerates every block state outside S
that one operation reaches from a well-formed chunk whose blocks are all in
S and which satisfies a strengthening (Bitwuzla, incremental:
each answer is blocked and the query asked again).  It stops at the first
round that adds none: S is then closed under every operation, relative to
that strengthening.  With initiation asked too, S and the strengthening
together are an inductive invariant, checked by the solver like any other;
S being a superset of what is reachable is all soundness needs, and its
extra states can only leave rows open.

Where the chunk has a ``chunk_md`` (5.2's layout), its hints (the contig
hint and its start, the scan hint and its start) are listed the same way, in
a second set grown with the first: the counterexample to induction of
``scan-hint-below-contig-hint``/free at 2x8 had a ``chunk_md`` whose scan hint
was its contig hint, which no trace seen leaves, and that set rules it out
(``docs/releases.md``).  Apart, the two sets do not say how ``chunk_md``'s
hints sit on the bits.  So where the chunk has one block (``joined``), each
entry of the second set is the block's state with ``chunk_md``'s hints, one
joined state per chunk: at 1x8 that settles the three ``chunk_md`` rows the
sets apart left open (``docs/releases.md``).  Past one block the pairs of a
block and the hints are too many to list (at 2x8 random walks met 67,590
for block 0 alone), so the sets stay apart there.

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
from pcpuverify.proofs.backends import bitwuzla_check
from pcpuverify.proofs.translate import translator
from pcpuverify.symbolic.state import SymChunk, block_key

BlockState = tuple[int, ...]  # a block's bits of alloc_map (bit i of the block is bit i), then its md fields
HintState = tuple[int, ...]  # chunk_md's CHUNK_MD_HINTS, after the block's state where ``joined``
CHUNK_MD_HINTS = ("contig_hint", "contig_hint_start", "scan_hint", "scan_hint_start")


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


def joined(geometry: Geometry) -> bool:
    """Whether ``chunk_md``'s hints are listed with the block's state: where the chunk has one block."""
    return nr_blocks(geometry) == 1


def chunk_md_terms(chunk: SymChunk) -> list[z3.BitVecRef] | None:
    """``chunk_md``'s hints as terms, in ``CHUNK_MD_HINTS`` order, after block 0's terms where ``joined``; None
    for a layout without ``chunk_md``."""
    md = getattr(chunk, "chunk_md", None)
    if md is None:
        return None
    hints = [getattr(md, f) for f in CHUNK_MD_HINTS]
    return [*block_terms(chunk, 0), *hints] if joined(chunk.geometry) else hints


def chunk_md_states_of(values: dict[str, Any], geometry: Geometry, names: list[str]) -> set[HintState]:
    """The ``chunk_md`` hints of one chunk given by its flat values (after its block's state where ``joined``);
    none for a layout without ``chunk_md``."""
    if f"chunk_md.{CHUNK_MD_HINTS[0]}" not in values:
        return set()
    hints = tuple(int(values[f"chunk_md.{f}"]) for f in CHUNK_MD_HINTS)
    if not joined(geometry):
        return {hints}
    (block,) = block_states_of(values, geometry, names)
    return {(*block, *hints)}


def _one_of(terms: list[z3.BitVecRef], states: Iterable[tuple[int, ...]]) -> z3.BoolRef:
    """``terms`` equal one of ``states``: grouped by the first term (a block's bitmap decides most of it)."""
    by_first: dict[int, list[tuple[int, ...]]] = {}
    for s in states:
        by_first.setdefault(s[0], []).append(s[1:])
    return z3.Or([z3.And(terms[0] == first, z3.Or([z3.And([t == v for t, v in zip(terms[1:], rest)]) for rest in more]))
                  for first, more in sorted(by_first.items())])


def _places(chunk: SymChunk) -> list[tuple[int, list[z3.BitVecRef]]]:
    """Where ``chunk`` is held to the sets: each block to the block states (set 0), ``chunk_md`` to the hints
    (set 1)."""
    places = [(0, block_terms(chunk, i)) for i in range(nr_blocks(chunk.geometry))]
    terms = chunk_md_terms(chunk)
    return places if terms is None else [*places, (1, terms)]


def within(chunk: SymChunk, states: Iterable[BlockState], hints: Iterable[HintState]) -> z3.BoolRef:
    """Every block of ``chunk`` is in one of ``states``, and its ``chunk_md``'s hints (if it has one) in ``hints``."""
    sets = (list(states), list(hints))
    return z3.And([_one_of(terms, sets[which]) for which, terms in _places(chunk)])


@dataclass(frozen=True)
class Closure:
    """How the sets were grown: the block states and ``chunk_md``'s hints (none for a layout without it), the
    states each round added to both, the time; ``failed`` says why they are not closed (too many states, or a
    query the solver did not answer), and then they are no lemma."""

    states: frozenset[BlockState]
    hints: frozenset[HintState]
    added: tuple[int, ...]
    seconds: float
    failed: str = ""
    joined: bool = False  # each of ``hints`` is a block's state with chunk_md's hints

    def describe(self) -> str:
        rounds = f"{len(self.added)} round" + ("s" if len(self.added) != 1 else "")
        hints = (f" and {len(self.hints):,} of chunk_md's hints" + (" joined with the block" if self.joined else "")
                 if self.hints else "")
        return (f"a closed set of {len(self.states):,} block states{hints} ({rounds},"
                f" {self.seconds:.0f} s; block_states.py)")


def close(pre: SymChunk, steps: dict[str, tuple[list[z3.BoolRef], SymChunk]], seeds: set[BlockState],
          hint_seeds: set[HintState], max_states: int, timeout: float) -> Closure:
    """Grow ``seeds`` and ``hint_seeds`` until no step of ``steps`` (per kind: its assumptions on ``pre``, and its
    post-state) takes a chunk inside both sets to a block state or ``chunk_md`` hints outside them; at most
    ``max_states`` states in each."""
    tr = translator("bitwuzla")
    bw = tr.bw
    sets: list[set[tuple[int, ...]]] = [set(seeds), set(hint_seeds)]
    what = ["block states", "chunk_md hint states"]
    added: list[int] = []
    started = time.perf_counter()

    def closure(why: str = "") -> Closure:
        return Closure(frozenset(sets[0]), frozenset(sets[1]), tuple(added), time.perf_counter() - started, why,
                       joined(pre.geometry))

    while True:
        new: list[set[tuple[int, ...]]] = [set(), set()]
        inside = within(pre, *sets)
        for kind, (assumptions, post) in steps.items():
            options = bw.Options()
            options.set(bw.Option.PRODUCE_MODELS, True)
            options.set(bw.Option.TIME_LIMIT_PER, int(timeout * 1000))
            solver = bw.Bitwuzla(tr.tm, options)
            for f in tr.translate_all([*assumptions, inside]):
                solver.assert_formula(f)
            for index, (which, terms) in enumerate(_places(post)):
                values = tr.translate_all(terms)
                solver.push(1)
                solver.assert_formula(tr(z3.Not(_one_of(terms, sets[which]))))
                while (answer := bitwuzla_check(solver)) == bw.Result.SAT:
                    state = tuple(int(solver.get_value(v).value(10)) for v in values)
                    new[which].add(state)
                    if len(sets[which]) + len(new[which]) > max_states:
                        return closure(f"more than {max_states:,} {what[which]} ({kind})")
                    solver.assert_formula(tr(z3.Or([t != v for t, v in zip(terms, state)])))
                solver.pop(1)
                if answer != bw.Result.UNSAT:
                    return closure(f"{kind}, {'block ' + str(index) if which == 0 else 'chunk_md'}:"
                                   f" the solver did not answer ({answer})")
        added.append(len(new[0]) + len(new[1]))
        if not added[-1]:
            return closure()
        for s, more in zip(sets, new):
            s |= more
