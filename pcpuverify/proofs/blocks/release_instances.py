"""5.2's block rows asked the weaker way first: what the block invariants imply, steps, then each conjunct.

Two of the eleven block invariants make a universal claim over a block's
bits: ``block-contig-hint-exact`` ("no run of ``contig_hint + 1`` bits"
anywhere) and ``scan-hint-largest-before`` ("no run of ``scan_hint + 1``
bits" before the hints).  Bit-blasted, relating the claim before a
function to the claim after is where the solvers spend their time: asked
whole, ``pcpu_block_update_hint_free:same`` had two rows UNKNOWN after
300 s at 256 bits, and ``free-same-block-runs`` had no verdict after 25
minutes at 1024.  So, as for 2017's blocks (``instances``, ``freed_run``),
each row is first asked as queries whose unsat proves it all the same:

- **implied** (once per role): the weaker precondition states each of the
  two claims at chosen positions only (``terms``), and the contig hint's
  run free.  5.2's invariants are other predicates than 2017's, so that
  the weaker precondition follows from them is asked, not argued: one
  query per claim, from the invariant, at a fresh position (so at every
  one).  The other nine invariants are assumed as they are.
- **steps** (once per role, a free inside the block only): facts about
  the region the encoder's own ``pcpu_freed_extent`` finds
  (``freed_run.free_region_steps``, and that it is the run read off the
  bits), each under the weaker precondition and the steps before it;
- **each conjunct** of the row's claim after, negated, under the weaker
  precondition and every step: "a run of ``contig_hint + 1`` bits" names
  the position where it starts, a fresh variable that is also one of the
  positions the claim is stated at before (the same satisfiability).

Any answer but unsat sends the row to the full query, whose answer is the
row's: a sat of a weaker query may rest on a block the invariants exclude.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import z3

from pcpuverify.proofs.blocks.freed_run import Step, free_region_steps, is_the_freed_run
from pcpuverify.proofs.blocks.instances import WITNESS, no_run_at, run_at, terms
from pcpuverify.proofs.blocks.release_roles import md_of, release_encoder
from pcpuverify.proofs.blocks.roles import FREE_ROLES, Role, area_mask, post_bits
from pcpuverify.symbolic.bv import I, Int, low_mask, range_mask, smax
from pcpuverify.symbolic.release_state import RELEASE_BLOCK_FIELDS, SymBlockMd, SymChunk54

if TYPE_CHECKING:  # release_contracts asks these queries, and holds the query type
    from pcpuverify.proofs.blocks.release_contracts import ReleaseQuery

Holds = Callable[[str, SymChunk54], z3.BoolRef]  # a block invariant's predicate of a one-block chunk
Query = tuple[str, list[z3.BoolRef]]  # a query's name in the row, its assertions

CONTIG_EXACT = "block-contig-hint-exact"
LARGEST_BEFORE = "scan-hint-largest-before"
UNIVERSAL = (CONTIG_EXACT, LARGEST_BEFORE)  # the invariants stated at chosen positions only, before


def _hint_run_free(md: SymBlockMd, bits: z3.BitVecRef, B: int) -> z3.BoolRef:
    s, c = md.contig_hint_start, md.contig_hint
    return z3.And(s >= 0, s + c <= B, bits & range_mask(s, s + c, B) == 0)


def _before_hints(md: SymBlockMd, bits: z3.BitVecRef, B: int) -> z3.BitVecRef:
    """The bits with everything from the later of the two hints' starts on taken: the runs "before" them."""
    return bits | ~low_mask(smax(md.scan_hint_start, md.contig_hint_start), B)


def _no_longer_run(md: SymBlockMd, bits: z3.BitVecRef, B: int, t: Int) -> z3.BoolRef:
    return no_run_at(bits, t, md.contig_hint + 1, B)


def _no_larger_before(md: SymBlockMd, bits: z3.BitVecRef, B: int, t: Int) -> z3.BoolRef:
    return z3.Or(md.scan_hint == 0, no_run_at(_before_hints(md, bits, B), t, md.scan_hint + 1, B))


def fields_in_range(block: SymChunk54, B: int) -> list[z3.BoolRef]:
    """Every field of the block's ``pcpu_block_md`` in ``[0, B]``."""
    md = md_of(block)
    return [z3.And(getattr(md, f) >= 0, getattr(md, f) <= B) for f in RELEASE_BLOCK_FIELDS]


@dataclass(frozen=True)
class WeakQueries:
    """The weaker queries of one role: ``shared`` (implied, steps), and per row its conjuncts negated, each
    under ``given`` (the weaker precondition and every step)."""

    shared: list[Query]
    rows: dict[str, list[Query]]
    given: list[z3.BoolRef]


def weak_queries(variant: str, role: Role, q: ReleaseQuery, names: Sequence[str], holds: Holds,
                 invariants: Sequence[str], search_guarantee: z3.BoolRef) -> WeakQueries:
    """The weaker queries for the rows ``names`` of ``role``, from a block that meets ``invariants`` (every block
    invariant) and the area's ``search_guarantee``."""
    B, md, bits = q.block_bits, md_of(q.pre), q.pre.alloc_map
    after, bits_after = md_of(q.post), post_bits(role, q.pre, q.area)  # type: ignore[arg-type]
    witness = z3.BitVec(WITNESS, 16)
    at = [*terms(md, after, q.area.lo, q.area.hi, bits_after, B), md.contig_hint_start - 1, md.contig_hint_start,
          md.scan_hint_start, after.scan_hint_start, witness]
    mask = area_mask(q.area, B)
    weak = [*fields_in_range(q.pre, B), *(holds(n, q.pre) for n in invariants if n not in UNIVERSAL),
            _hint_run_free(md, bits, B), *(_no_longer_run(md, bits, B, t) for t in at),
            *(_no_larger_before(md, bits, B, t) for t in at),
            q.area.allowed, bits & mask == mask if role.kind == "free" else bits & mask == 0, search_guarantee]
    anywhere = z3.BitVec("implied.position", 16)
    shared: list[Query] = [
        (f"implied: {CONTIG_EXACT}, its run free", [holds(CONTIG_EXACT, q.pre), z3.Not(_hint_run_free(md, bits, B))]),
        (f"implied: {CONTIG_EXACT}, no longer run",
         [holds(CONTIG_EXACT, q.pre), z3.Not(_no_longer_run(md, bits, B, anywhere))]),
        (f"implied: {LARGEST_BEFORE}", [holds(LARGEST_BEFORE, q.pre), z3.Not(_no_larger_before(md, bits, B, anywhere))]),
    ]
    facts: list[z3.BoolRef] = []
    for name, fact in freed_run_steps(variant, q) if role is FREE_ROLES[0] else []:
        shared.append((f"step: {name}", [*weak, *facts, z3.Not(fact)]))
        facts.append(fact)
    given = [*weak, *facts]
    return WeakQueries(shared, {name: [(label, [*given, negation]) for label, negation in refutations(name, q.post, holds)]
                                for name in names}, given)


def freed_run_steps(variant: str, q: ReleaseQuery) -> list[Step]:
    """The steps about the region ``pcpu_freed_extent`` (the encoder's own) finds for a free inside the block."""
    B, lo, hi = q.block_bits, q.area.lo, q.area.hi
    bits_after = post_bits(FREE_ROLES[0], q.pre, q.area)  # type: ignore[arg-type]
    region = release_encoder(variant, B).pcpu_freed_extent(q.pre.set(alloc_map=bits_after), I(0), I(0), lo, hi)
    return [*free_region_steps(md_of(q.post), bits_after, lo, hi, B, region),
            is_the_freed_run(region, bits_after, lo, hi, B)]


def refutations(name: str, block: SymChunk54, holds: Holds) -> list[tuple[str, z3.BoolRef]]:
    """The invariant ``name`` of ``block`` broken, as one negation per conjunct; a universal claim's names the
    position where a longer run starts (``instances.WITNESS``)."""
    B, md, bits = block.geometry.block_bits, md_of(block), block.alloc_map
    witness = z3.BitVec(WITNESS, 16)
    if name == CONTIG_EXACT:  # its run free gives a run of contig_hint bits
        return [("its run not free", z3.Not(_hint_run_free(md, bits, B))),
                ("a longer run", run_at(bits, witness, md.contig_hint + 1, B))]
    if name == LARGEST_BEFORE:
        return [("a larger run before", z3.Not(_no_larger_before(md, bits, B, witness)))]
    return [(name, z3.Not(holds(name, block)))]

