"""The free run a same-block free leaves, read off the bits, and the steps that prove the free's contracts.

``pcpu_block_update_hint_free`` finds the run the freed area ``[lo, hi)``
joins with ``find_last_bit`` and ``find_next_bit`` (or, where the area abuts
it, from the contig hint), and raises the hint to it.  Its two contracts
(``block-hints-match-scan`` and ``free-same-block-runs`` after
``..._free:same``) hold no circuit to cut (``run_lemma``); asked whole, the
solvers spent their time relating the run those scans bind to the claim
"no run of ``contig_hint + 1`` bits anywhere" (one query was 121 s of 193 at
256 bits, and neither contract had a verdict at 1024).

So the weaker queries (``instances``) are preceded by *steps*: facts about
the freed run ``[start, end)`` (``freed_run``), each asked under the same
weaker precondition, with the witness among its positions, and the steps
before it, and each then assumed by the queries after it:

- **lower edge**: ``start <= lo``, and bit ``start - 1`` is allocated, or
  ``start`` is 0;
- **upper edge**: ``end >= hi``, and bit ``end`` is allocated, or ``end`` is
  the block's end;
- **free**: the bits ``[start, end)`` are free;
- **hint covers it**: the contig hint after the free is at least
  ``end - start`` (the one step about what the function wrote);
- **a longer run lies inside it**: a free run of ``contig_hint + 1`` bits at
  the witness that meets the area starts at or after ``start`` and ends at
  or before ``end``.

Each step follows from the block invariant and the function, so its unsat
proves it for every block the contract covers, at every witness; a step not
unsat is an answer like any other query's (``prove``: a sat is replayed on
the model, else the full query decides).
"""

from __future__ import annotations

import z3

from pcpuverify.proofs.blocks.instances import WITNESS, run_at
from pcpuverify.symbolic.bv import I, Int, bit, highest_set, low_mask, lowest_set, range_mask
from pcpuverify.symbolic.state import SymBlock

Step = tuple[str, z3.BoolRef]  # a fact's name, the fact


def freed_run(bits_after: z3.BitVecRef, lo: Int, hi: Int, B: int) -> tuple[Int, Int]:
    """The free run the freed area ``[lo, hi)`` belongs to after the free, from the bits alone."""
    below = bits_after & low_mask(lo, B)
    above = bits_after & ~low_mask(hi, B)
    start = z3.If(below == 0, I(0), highest_set(below, B) + 1)
    end = z3.If(above == 0, I(B), lowest_set(above, B))
    return start, end


def freed_run_steps(after: SymBlock, bits_after: z3.BitVecRef, lo: Int, hi: Int, B: int) -> list[Step]:
    """The steps, in the order they are proved, for a free of ``[lo, hi)`` that leaves ``after``."""
    start, end = freed_run(bits_after, lo, hi, B)
    witness = z3.BitVec(WITNESS, 16)
    longer = after.contig_hint + 1
    meets = z3.And(witness < hi, witness + longer > lo)
    return [
        ("lower edge", z3.And(start <= lo, z3.Or(start == 0, bit(bits_after, start - 1, B)))),
        ("upper edge", z3.And(end >= hi, z3.Or(end == B, bit(bits_after, end, B)))),
        ("free", bits_after & range_mask(start, end, B) == 0),
        ("hint covers it", after.contig_hint >= end - start),
        ("a longer run lies inside it", z3.Implies(z3.And(run_at(bits_after, witness, longer, B), meets),
                                                   z3.And(start <= witness, witness + longer <= end))),
    ]
