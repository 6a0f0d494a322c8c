"""5.2's ``free-same-block-runs`` asked the weaker way: what the eleven block invariants imply, then steps.

Asked whole, ``free-same-block-runs`` relates three universal claims over
a block's bits (``block-contig-hint-exact``'s "no longer run anywhere",
``scan-hint-maximal``'s, ``scan-hint-largest-before``'s) to the freed run:
108 s at 256 bits, no verdict after 25 minutes at 1024.  The facts it
states need none of the scan hint invariants.  So, as for 2017's blocks
(``instances``, ``freed_run``), the queries here assume a weaker
precondition, and their unsat proves the contract all the same:

- **implied**: each conjunct of the weaker precondition follows from the
  block invariant it restates (``IMPLIED``), one query each, the claim "no
  run of ``contig_hint + 1`` bits" at a fresh position (so at every
  position).  This is what makes the weaker precondition weaker, proved,
  not argued: 5.2's invariants are other predicates than 2017's
  ``block_scan_parts``.
- **steps** (``freed_run.free_region_steps``), about the region the
  encoder's own ``pcpu_freed_extent`` finds, each under the weaker
  precondition and the steps before it: its edges are allocated, its bits
  free, the hint after covers it, a longer run that meets the area lies
  inside it, and it is the run read off the bits;
- **facts**: each conjunct of the run's place among the old metadata's
  runs (``abstraction.freed_block``), negated, under every step.

The weaker precondition is 2017's: the contig hint's run free,
``left_free`` and ``right_free`` exact, ``first_free`` not past the first
free bit (``block_scan_parts``), ``nr_bits``, the fields in range, and "no
run of ``contig_hint + 1`` bits" at the instance terms (``instances.terms``),
at the contig hint's start and the bit before it (so its run is maximal),
and at the witness.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import z3

from pcpuverify.invariants.hints import block_scan_parts
from pcpuverify.proofs.blocks.abstraction import FreeArea, freed_block
from pcpuverify.proofs.blocks.contracts import conjuncts
from pcpuverify.proofs.blocks.freed_run import free_region_steps, freed_run, is_the_freed_run
from pcpuverify.proofs.blocks.instances import WITNESS, no_run_at, terms
from pcpuverify.proofs.blocks.release_roles import md_of, release_encoder
from pcpuverify.proofs.blocks.roles import FREE_ROLES, area_mask, post_bits
from pcpuverify.symbolic.bv import I, Int, range_mask
from pcpuverify.symbolic.release_state import RELEASE_BLOCK_FIELDS, SymChunk54

if TYPE_CHECKING:  # release_contracts asks these queries, and holds the query type
    from pcpuverify.proofs.blocks.release_contracts import ReleaseQuery

Holds = Callable[[str, SymChunk54], z3.BoolRef]  # a block invariant's predicate of a one-block chunk

Query = tuple[str, list[z3.BoolRef]]  # a query's name in the row, its assertions

# each conjunct of the weaker precondition, and the block invariant it restates (asked with the fields' ranges)
IMPLIED = (
    ("contig hint free", "block-contig-hint-exact"),
    ("no longer run", "block-contig-hint-exact"),
    ("left_free", "block-left-right-free-exact"),
    ("right_free", "block-left-right-free-exact"),
    ("first_free", "first-free-not-above-first-free-bit"),
    ("nr_bits", "block-nr-bits"),
)


def _in_range(block: SymChunk54, B: int) -> list[z3.BoolRef]:
    md = md_of(block)
    return [z3.And(getattr(md, f) >= 0, getattr(md, f) <= B) for f in RELEASE_BLOCK_FIELDS]


def _weak_parts(block: SymChunk54, B: int, at: Sequence[Int]) -> dict[str, list[z3.BoolRef]]:
    """The weaker precondition's invariant part, by ``IMPLIED``'s names.  The contig hint's run is maximal
    by the instances at its start and the bit before it (``weak_queries``): asked of the invariant, that took
    Bitwuzla more than 8 minutes at 1024 bits, and "no longer run" at a fresh position 28 s."""
    md, bits = md_of(block), block.alloc_map
    parts = block_scan_parts(bits, md, B)
    s, c = md.contig_hint_start, md.contig_hint
    return {
        "contig hint free": [s >= 0, s + c <= B, bits & range_mask(s, s + c, B) == 0],
        "no longer run": [no_run_at(bits, t, c + 1, B) for t in at],
        **{name: [parts[name]] for name in ("left_free", "right_free", "first_free")},
        "nr_bits": [md.nr_bits == B],
    }


def implied_queries(q: ReleaseQuery, holds: Holds) -> list[Query]:
    """One query per ``IMPLIED`` conjunct: the invariant it restates, the ranges, and the conjunct negated."""
    B = q.block_bits
    given = _in_range(q.pre, B)
    anywhere = _weak_parts(q.pre, B, [z3.BitVec("implied.position", 16)])
    return [(f"implied: {name} by {invariant}", [*given, holds(invariant, q.pre), z3.Not(z3.And(anywhere[name]))])
            for name, invariant in IMPLIED]


def weak_queries(variant: str, q: ReleaseQuery, holds: Holds) -> list[Query]:
    """Every query of the weaker way, in order; all unsat proves ``free-same-block-runs``."""
    B, md, lo, hi = q.block_bits, md_of(q.pre), q.area.lo, q.area.hi
    bits_after = post_bits(FREE_ROLES[0], q.pre, q.area)  # type: ignore[arg-type]  # the free inside the block
    region = release_encoder(variant, B).pcpu_freed_extent(q.pre.set(alloc_map=bits_after), I(0), I(0), lo, hi)
    run_start, run_end = freed_run(bits_after, lo, hi, B)
    _, place = freed_block(md, FreeArea(0, lo, hi, run_start, run_end), B)
    witness = z3.BitVec(WITNESS, 16)
    at = [*terms(md, md_of(q.post), lo, hi, bits_after, B), md.contig_hint_start - 1, md.contig_hint_start, witness]
    mask = area_mask(q.area, B)
    weak = [*_in_range(q.pre, B), *(p for part in _weak_parts(q.pre, B, at).values() for p in part),
            q.area.allowed, q.pre.alloc_map & mask == mask]
    steps = [*free_region_steps(md_of(q.post), bits_after, lo, hi, B, region),
             is_the_freed_run(region, bits_after, lo, hi, B)]
    queries, facts = [], []
    for name, fact in steps:
        queries.append((f"step: {name}", [*weak, *facts, z3.Not(fact)]))
        facts.append(fact)
    queries += [(f"the freed run's place, {i}", [*weak, *facts, z3.Not(fact)])
                for i, fact in enumerate(conjuncts(place))]
    return implied_queries(q, holds) + queries
