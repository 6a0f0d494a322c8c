"""The block invariant's one universal claim, stated at chosen positions instead of everywhere.

``block-hints-match-scan`` says that a block's ``contig_hint`` is its longest
free run: a run of ``contig_hint`` bits exists, and no run of
``contig_hint + 1`` bits starts anywhere.  Bit-blasted, "anywhere" is a
circuit over every position and every length (``run_starts``), and relating
the one before a function to the one after is where the solvers spent their
time at 256 and 1024 bits.

For the contracts that hold the block invariant before and after a
function (``contracts.Contract.weak_pre``), the query here is weaker than the
full one, so its unsat proves the contract all the same:

- **Before**, the invariant's other conjuncts (``hints.block_scan_parts``:
  the hint's run is free and maximal, ``left_free`` and ``right_free`` exact,
  ``first_free`` not past the first free bit) and "no run of
  ``contig_hint + 1`` bits starts at t" for a few terms t only (``terms``).
  Each instance follows from the invariant.
- **After**, one query per conjunct, each the negation of one conjunct:
  "no run of ``contig_hint`` bits" is asked at the hint's own start only (a
  weaker negation), and "a run of ``contig_hint + 1`` bits" names the
  position where it starts, a fresh variable that is also an instance term
  before (the same satisfiability).

The terms are where a longer run would have to come from: the block's edges,
the area's ends, the start of the free run the area belongs to after the
function, the start of the hint after it, and the witness.  A sat answer may
rest on a block the weaker query admits and the invariant does not, so
``prove`` replays it and, unless it is a violation on the model, asks the
full query.
"""

from __future__ import annotations

from collections.abc import Sequence

import z3

from pcpuverify.invariants.hints import block_scan_parts
from pcpuverify.symbolic.bv import I, Int, highest_set, low_mask, range_mask
from pcpuverify.symbolic.state import SymBlock, SymChunk

WITNESS = "witness.run_start"  # the Z3 name of the position a longer run starts at


def run_at(bits: z3.BitVecRef, start: Int, length: Int, B: int) -> z3.BoolRef:
    """A free run of ``length`` bits (set = allocated in ``bits``) starts at ``start``; a run of no bits does anywhere."""
    inside = z3.And(length <= B, start >= 0, start <= B, start + length <= B)
    return z3.Or(length <= 0, z3.And(inside, bits & range_mask(start, start + length, B) == 0))


def no_run_at(bits: z3.BitVecRef, start: Int, length: Int, B: int) -> z3.BoolRef:
    """An instance of the claim: no free run of ``length`` bits starts at ``start``."""
    return z3.Not(run_at(bits, start, length, B))


def area_run_start(bits_after: z3.BitVecRef, lo: Int, B: int) -> Int:
    """Where the free run that reaches ``lo`` from below starts in ``bits_after`` (``lo`` if none does)."""
    below = bits_after & low_mask(lo, B)
    return z3.If(below == 0, I(0), highest_set(below, B) + 1)


def terms(before: SymBlock, after: SymBlock, lo: Int, hi: Int, bits_after: z3.BitVecRef, B: int) -> list[Int]:
    """The positions the claim is stated at before a function on ``[lo, hi)``."""
    return [I(0), I(B) - before.right_free, lo, hi, area_run_start(bits_after, lo, B), after.contig_hint_start]


def weak_invariant(chunk: SymChunk, block: SymBlock, at: Sequence[Int]) -> z3.BoolRef:
    """The invariant of a one-block ``chunk`` with no longer run than the hint at ``at`` only: implied by it."""
    B = chunk.geometry.block_bits
    instances = [no_run_at(chunk.alloc_map, t, block.contig_hint + 1, B) for t in at]
    return z3.And(*block_scan_parts(chunk.alloc_map, block, B).values(), *instances)


def refutations(chunk: SymChunk, block: SymBlock) -> list[tuple[str, z3.BoolRef, list[Int]]]:
    """Each conjunct of the invariant after, negated: (its name, the negation, the witness it names, if any)."""
    B = chunk.geometry.block_bits
    h, s = block.contig_hint, block.contig_hint_start
    start = z3.BitVec(WITNESS, s.size())
    found = [("a run of contig_hint bits", z3.And(h > 0, no_run_at(chunk.alloc_map, s, h, B)), []),
             ("no run of contig_hint + 1 bits", run_at(chunk.alloc_map, start, h + 1, B), [start])]
    return found + [(name, z3.Not(part), []) for name, part in block_scan_parts(chunk.alloc_map, block, B).items()]
