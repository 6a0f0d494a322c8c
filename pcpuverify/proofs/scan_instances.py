"""``block-hints-match-scan`` across an operation, with its one universal claim stated at chosen positions only.

The invariant says each block's hints are those of its bits.  One of its claims is universal: no free run of
``contig_hint + 1`` bits starts *anywhere* in the block.  Bit-blasted, that is a circuit over every position and
every length of every block, before the operation and after it, and at 4x64 it was the suite's slowest query
(``fixed``, Bitwuzla: 211.4 s for an allocation, 220.1 s for a free; docs/design.md, "Solvers").  The block
contracts met the same circuit at 256 and 1024 bits and answered it with weaker queries
(``proofs/blocks/instances.py``); these are the same queries, one block of the chunk at a time:

- **before**, every held invariant but this one, which is stated as its other conjuncts
  (``hints.block_scan_parts``) and "no run of ``contig_hint + 1`` bits starts at t", in every block, for a few
  terms t only (``terms``): the block's edges, the ends of the bits the operation changed in it, the start of the
  free run that reaches the first of them after it, the hint's start after it, and the witness below;
- **after**, one query per block and conjunct, each that conjunct of the block broken.  "No run of
  ``contig_hint + 1`` bits" is refuted by naming where such a run starts (a fresh witness, also a term before).
  "A run of ``contig_hint`` bits" needs no query of its own: the hint's run being free and maximal
  (``block_scan_parts``) implies it, so a block without one breaks that conjunct too.

Why unsat answers to all of them prove the whole query unsat: every instance before follows from the invariant,
so a model of the whole query satisfies each query's assumptions, with the witness where its longer run starts
after the operation, if it has one; and its state after breaks some conjunct of some block, so it meets that
block's negation of it.  So this route proves, and never refutes: anything but unsat, and the whole query is
asked.

Measured on the query alone (``fixed``, every state invariant held, Bitwuzla, one core; 7 December 2026; a
scratch version that also asked "a run of ``contig_hint`` bits", at the hint's start, as a sixth part per block):

| geometry | whole, alloc | here, alloc | whole, free | here, free |
|---|---|---|---|---|
| 2x32 | 8.9 s | 9.5 s | | |
| 4x32 | 29.1 s | 33.8 s | | |
| 2x64 | 61.3 s | 29.4 s | | |
| 4x64 | 211.4 s | 104.5 s (the longest part 8.2 s) | 220.1 s | 126.8 s (13.4 s) |

So the route starts at 64-bit blocks (``FROM_BLOCK_BITS``).  One query per block (every conjunct's negation in
one; ``free-bits-count`` and the three run invariants left out of the assumptions, which alone changed little:
103.7 s and 118.4 s per conjunct) took 86.8 s and 164.7 s at 4x64: less for an allocation, more for a free, and
four long queries where two workers share twenty short ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from pcpuverify.invariants.base import Invariant
from pcpuverify.invariants.hints import block_scan_parts, block_seg
from pcpuverify.proofs.blocks.instances import no_run_at, run_at
from pcpuverify.proofs.blocks.instances import terms as instance_terms
from pcpuverify.proofs.solver import Answer
from pcpuverify.symbolic.bv import INT_W, I, Int, highest_set, lowest_set
from pcpuverify.symbolic.state import SymChunk

INVARIANT = "block-hints-match-scan"
FROM_BLOCK_BITS = 64  # narrower blocks ask the whole query: at 32 bits it was the faster (above)
KINDS = ("alloc", "free")  # populating and depopulating leave the bits and hints alone: their whole query is instant


@dataclass(frozen=True)
class Part:
    """One query of the route: which block and conjunct it breaks, what it assumes of the blocks before (the
    invariant's weaker form), the conjunct's negation after, and the witness that negation names, if any."""

    name: str
    given: list[z3.BoolRef]
    negation: z3.BoolRef
    witness: Int | None = None


def applies(inv: Invariant, kind: str, pre: SymChunk) -> bool:
    """Whether ``inv``'s query for an operation of ``kind`` on chunks like ``pre`` is asked this way first."""
    return inv.name == INVARIANT and kind in KINDS and pre.geometry.block_bits >= FROM_BLOCK_BITS


def terms(pre: SymChunk, post: SymChunk, i: int) -> list[Int]:
    """Where block ``i``'s claim is stated before the operation: where a longer run after it would come from."""
    B = pre.geometry.block_bits
    before, after = block_seg(pre, i), block_seg(post, i)
    changed = before ^ after  # the operation's area in this block
    lo = z3.If(changed == 0, I(0), lowest_set(changed, B))
    hi = z3.If(changed == 0, I(0), highest_set(changed, B) + 1)
    return instance_terms(pre.md_blocks[i], post.md_blocks[i], lo, hi, after, B)


def weak_invariant(pre: SymChunk, post: SymChunk) -> list[z3.BoolRef]:
    """The invariant before, in every block, its universal claim at ``terms`` only."""
    B = pre.geometry.block_bits
    out = []
    for i, md in enumerate(pre.md_blocks):
        seg = block_seg(pre, i)
        out += [*block_scan_parts(seg, md, B).values(),
                *[no_run_at(seg, t, md.contig_hint + 1, B) for t in terms(pre, post, i)]]
    return out


def parts(pre: SymChunk, post: SymChunk) -> list[Part]:
    """The route's queries: each block's each conjunct, broken after the operation."""
    B = pre.geometry.block_bits
    given = weak_invariant(pre, post)
    out = []
    for i, md in enumerate(post.md_blocks):
        seg = block_seg(post, i)
        start = z3.BitVec(f"scan_instances.witness{i}", INT_W)
        at_start = no_run_at(block_seg(pre, i), start, pre.md_blocks[i].contig_hint + 1, B)  # the claim there
        out.append(Part(f"block {i}: no run of contig_hint + 1 bits", [*given, at_start],
                        run_at(seg, start, md.contig_hint + 1, B), start))
        out += [Part(f"block {i}: {name}", given, z3.Not(claim))
                for name, claim in block_scan_parts(seg, md, B).items()]
    return out


def combined(asked: list[Part], answers: list[Answer]) -> Answer | None:
    """The whole query's unsat answer, if every part's is unsat; else None: ask it whole."""
    if not answers or any(a.status != "unsat" for a in answers):
        return None
    times = {f"{name} ({p.name})": t for p, a in zip(asked, answers) for name, t in a.times.items()}
    solvers = "+".join(sorted({a.solver for a in answers}))
    return Answer("unsat", sum(a.seconds for a in answers), times=times, solver=f"{solvers} (scan at instances)")
