"""A block seen only through its metadata: what every block's ``pcpu_bitmap_md`` satisfies, and bits that realise it.

``consistent(md, B)`` is what the block invariant implies of the metadata
alone; the block-level contract ``md-abstraction-sound`` proves that
implication at each width.  It is also exact: ``realise`` builds, for any
consistent metadata, bits on which the block invariant holds (free exactly at
``[0, left_free)``, the hint's run and ``[B - right_free, B)``), so a
counterexample found over metadata replays on the model.

``longest_run`` is the longest free run of a chunk made of such blocks,
written from the definition (a run lies in one block, or it is one block's
right edge, whole free blocks, and the next one's left edge), not from the
port's ``pcpu_chunk_update_hint``.  ``run_is_free`` says that ``[start,
start + length)`` of the chunk lies on bits the metadata shows free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import z3

from pcpuverify.model.chunk import PcpuBitmapMd
from pcpuverify.symbolic.bv import I, Int, smax, smin
from pcpuverify.symbolic.state import SymBlock


class MdHints(Protocol):
    """The fields of a block's metadata the chunk scans read: 2017's ``pcpu_bitmap_md`` and 5.2's
    ``pcpu_block_md`` alike (``release_abstraction``)."""

    @property
    def contig_hint(self) -> Int: ...
    @property
    def contig_hint_start(self) -> Int: ...
    @property
    def left_free(self) -> Int: ...
    @property
    def right_free(self) -> Int: ...
    @property
    def first_free(self) -> Int: ...


def consistent(md: MdHints, B: int) -> z3.BoolRef:
    c, s, left, right = md.contig_hint, md.contig_hint_start, md.left_free, md.right_free
    full = c == B
    return z3.And(
        c >= 0, c <= B, s >= 0, s <= B, left >= 0, right >= 0, md.first_free >= 0, md.first_free <= B,
        left <= c, right <= c,
        full == (left == B), full == (right == B),
        z3.Implies(full, s == 0),
        z3.Implies(z3.Not(full), left + right < B),  # an allocated bit separates the edges
        # the hint's run is the left edge, the right edge, or lies strictly between them
        z3.Implies(z3.And(c > 0, z3.Not(full)), z3.Or(
            z3.And(s == 0, c == left),
            z3.And(s + c == B, c == right),
            z3.And(s > left, s + c < B - right),
        )),
        z3.Implies(c > 0, md.first_free <= s),  # the fit's search starts at or before the hint
        z3.Implies(left > 0, md.first_free == 0),
    )


def realise(md: PcpuBitmapMd, B: int) -> int:
    """Bits (set = allocated) free exactly on the edges and the hint's run that ``md`` describes."""
    return realise_runs(md.left_free, md.contig_hint_start, md.contig_hint, md.right_free, B)


def realise_runs(left_free: int, contig_hint_start: int, contig_hint: int, right_free: int, B: int) -> int:
    """Bits (set = allocated) of a block free on ``[0, left_free)``, the hint's run and ``[B - right_free, B)``."""
    free = 0
    for lo, hi in ((0, left_free), (contig_hint_start, contig_hint_start + contig_hint), (B - right_free, B)):
        free |= ((1 << max(hi - lo, 0)) - 1) << lo
    return ((1 << B) - 1) & ~free


def longest_run(blocks: Sequence[MdHints], B: int) -> Int:
    longest, run = I(0), I(0)  # run: the free bits open at the right end so far
    for md in blocks:
        full = md.contig_hint == B
        longest = smax(longest, z3.If(full, run + B, smax(run + md.left_free, md.contig_hint)))
        run = z3.If(full, run + B, md.right_free)
    return longest


def longest_run_concrete(blocks: Sequence[PcpuBitmapMd], B: int) -> int:
    longest = run = 0
    for md in blocks:
        full = md.contig_hint == B
        longest = max(longest, run + B if full else max(run + md.left_free, md.contig_hint))
        run = run + B if full else md.right_free
    return longest


def run_is_free(blocks: Sequence[MdHints], B: int, start: Int, length: Int) -> z3.BoolRef:
    """Each block's share ``[a, b)`` of the run is an edge, inside the hint's run, or the block is free."""
    conds = [start >= 0, start + length <= len(blocks) * B]
    for k, md in enumerate(blocks):
        a, b = smax(start - k * B, I(0)), smin(start + length - k * B, I(B))
        conds.append(z3.Or(
            a >= b,
            md.contig_hint == B,
            z3.And(a == 0, b <= md.left_free),
            z3.And(b == B, a >= B - md.right_free),
            z3.And(a >= md.contig_hint_start, b <= md.contig_hint_start + md.contig_hint),
        ))
    return z3.Or(length <= 0, z3.And(conds))


@dataclass(frozen=True)
class FreeArea:
    """A same-block free: block ``index``, block offsets ``[lo, hi)``, and its freed run ``[start, end)``."""

    index: int
    lo: Int
    hi: Int
    start: Int
    end: Int

    @staticmethod
    def fresh(index: int) -> FreeArea:
        return FreeArea(index, *(z3.BitVec(f"free.{n}", 16) for n in ("lo", "hi", "start", "end")))


def freed_block(md: MdHints, f: FreeArea, B: int) -> tuple[SymBlock, z3.BoolRef]:
    """The block after a same-block free of ``[lo, hi)`` whose freed run is ``[start, end)``, and what holds of
    that run against the old metadata (each maximal run is an edge, the hint's run, or apart from both; and
    the run is whole: ``freed_run_maximal``).

    The block contract ``free-same-block-runs`` proves both, with the run read off the bits."""
    c, cs = md.contig_hint, md.contig_hint_start
    grows = f.end - f.start > c

    def apart_or_hint(x: Int, y: Int) -> z3.BoolRef:
        return z3.Or(x >= y, z3.And(cs == x, c == y - x), c == 0, y < cs, x > cs + c)

    after = SymBlock(z3.If(grows, f.end - f.start, c), z3.If(grows, f.start, cs),
                     z3.If(f.start == 0, f.end, md.left_free), z3.If(f.end == B, f.end - f.start, md.right_free),
                     smin(md.first_free, f.start))
    holds = z3.And(
        f.lo >= 0, f.lo < f.hi, f.hi <= B, f.start >= 0, f.start <= f.lo, f.end >= f.hi, f.end <= B,
        z3.Implies(f.start == 0, md.left_free == f.lo),
        z3.Implies(f.start > 0, z3.And(f.lo - f.start <= c, z3.Or(f.start == f.lo, f.start > md.left_free),
                                       apart_or_hint(f.start, f.lo))),
        z3.Implies(f.end == B, md.right_free == B - f.hi),
        z3.Implies(f.end < B, z3.And(f.end - f.hi <= c, z3.Or(f.end == f.hi, f.end < B - md.right_free),
                                     apart_or_hint(f.hi, f.end))),
        f.lo >= md.left_free, f.hi <= B - md.right_free, z3.Or(c == 0, f.hi <= cs, f.lo >= cs + c),
        freed_run_maximal(md, f, B),
    )
    return after, holds


def freed_run_maximal(md: MdHints, f: FreeArea, B: int) -> z3.BoolRef:
    """The freed run ``[start, end)`` is a whole run: the bit before it and the bit after it are not on a run
    the old metadata shows free (the left edge, the contig hint's run, the right edge).  Without it a side of
    the run may be empty next to such a run: the solver freed a bit beside the contig hint and kept the two
    runs apart, and the ``NxblockB`` free rows came out SPURIOUS (2017's ``v1`` at 2xblock8, every
    ``mainline-fixed`` row before 5.2's rows had it)."""
    c, cs = md.contig_hint, md.contig_hint_start
    return z3.And(
        z3.Implies(f.start > 0, z3.And(f.start > md.left_free, z3.Or(c == 0, f.start <= cs, f.start > cs + c))),
        z3.Implies(f.end < B, z3.And(f.end < B - md.right_free, z3.Or(c == 0, f.end < cs, f.end >= cs + c))),
    )
