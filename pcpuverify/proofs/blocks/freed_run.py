"""The free region a same-block free finds, and the steps that prove the free's contracts from it.

``pcpu_block_update_hint_free`` grows the freed area ``[lo, hi)`` over the
free bits around it with ``find_last_bit`` and ``find_next_bit``, or to the
contig hint where the area abuts it (``SymPercpu.free_region``), and raises
the hint to the region it found.  Its two contracts (``block-hints-match-scan``
and ``free-same-block-runs`` after ``..._free:same``) hold no circuit to cut
(``run_lemma``); asked whole, the solvers spent their time relating that
region to the claim "no run of ``contig_hint + 1`` bits anywhere" (one query
was 121 s of 193 at 256 bits, and neither contract had a verdict at 1024).

So the weaker queries (``instances``) are preceded by *steps*: facts about
the region ``[start, end)`` the function found (``roles.free_region``: the
encoder's own terms), each asked under the same weaker precondition, with
the witness among its positions, and the steps before it, and each then
assumed by the queries after it:

- **lower edge**: ``start <= lo``, and bit ``start - 1`` is allocated, or
  ``start`` is 0;
- **upper edge**: ``end >= hi``, and bit ``end`` is allocated, or ``end`` is
  the block's end;
- **free**: the bits ``[start, end)`` are free;
- **hint covers it**: the contig hint after the free is at least
  ``end - start``;
- **a longer run lies inside it**: a free run of ``contig_hint + 1`` bits at
  the witness that meets the area starts at or after ``start`` and ends at
  or before ``end``;
- and for ``free-same-block-runs``, **it is the freed run**: the region is
  ``freed_run``, the run read off the bits, from which that contract states
  the metadata after.

The first three say that the region is the maximal free run around the
area, whatever the code did to find it (where it abuts the hint, the
function takes the hint's bounds on trust).  Each step follows from the
block invariant and the function, so its unsat proves it for every block
the contract covers, at every witness; a step not unsat is an answer like
any other query's (``prove``: a sat is replayed on the model, else the full
query decides).
"""

from __future__ import annotations

import z3

from pcpuverify.proofs.blocks.instances import WITNESS, run_at
from pcpuverify.symbolic.bv import Bits, I, Int, bit, range_mask
from pcpuverify.symbolic.state import SymBlock

Step = tuple[str, z3.BoolRef]  # a fact's name, the fact


def freed_run(bits_after: z3.BitVecRef, lo: Int, hi: Int, B: int) -> tuple[Int, Int]:
    """The free run the freed area ``[lo, hi)`` belongs to after the free, from the bits alone.

    Found the way the function finds it where the area does not abut the hint (``find_last_bit`` below
    ``lo``, ``find_next_bit`` from ``hi``), so that the step "it is the freed run" shares those terms with
    the transition, after the steps before it have proved the region maximal.
    """
    bits = Bits(bits_after, B)
    last, _ = bits.find_last_bit(lo)
    end, _ = bits.find_next_bit(I(B), hi)
    return z3.If(last == lo, I(0), last + 1), end


def free_region_steps(after: SymBlock, bits_after: z3.BitVecRef, lo: Int, hi: Int, B: int,
                      region: tuple[Int, Int]) -> list[Step]:
    """The steps, in the order they are proved, for a free of ``[lo, hi)`` that found the free region
    ``region`` (``roles.free_region``) and left ``after``."""
    start, end = region
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


def is_the_freed_run(region: tuple[Int, Int], bits_after: z3.BitVecRef, lo: Int, hi: Int, B: int) -> Step:
    """The last step for ``free-same-block-runs``: the region found is ``freed_run``."""
    start, end = freed_run(bits_after, lo, hi, B)
    return "it is the freed run", z3.And(region[0] == start, region[1] == end)
