"""The Z3 encoding of ``mainline-fixed`` (model/mainline_fixed.py): ``SymMainline`` plus one override per fix.

Each override encodes the model's override of the same name; the fixes are
docs/patches/mainline-fixed.patch and are argued in docs/kernels.md.
"""

from __future__ import annotations

import z3

from pcpuverify.symbolic.bv import I, Int, smin
from pcpuverify.symbolic.encode_linux_4_14 import ffs0
from pcpuverify.symbolic.encode_linux_5_4 import SymMainline
from pcpuverify.symbolic.release_state import SymBlockMd, SymChunk54


class SymMainlineFixed(SymMainline):
    """Encoding of variant ``mainline-fixed``."""

    variant = "mainline-fixed"

    def pcpu_free_update_chunk_md(self, chunk: SymChunk54, s_index: Int, start: Int, end: Int) -> SymChunk54:
        """Fix for ``chunk-hint-accurate-in-one-block``: ``end`` as a chunk offset, ``pcpu_block_off_to_off``."""
        return chunk.set(chunk_md=self.pcpu_block_update(chunk.chunk_md, s_index * self.B + start,
                                                         s_index * self.B + end))

    def pcpu_free_refreshes_chunk(self, chunk: SymChunk54, s_index: Int, e_index: Int, start: Int, end: Int) -> z3.BoolRef:
        """Fix for ``chunk-hint-off-by-at-most-a-page``: also refresh when the freed area reaches into a
        neighbouring block's free bits (the previous block's ``right_free``, the next one's ``left_free``)."""
        left = z3.And(start == 0, s_index > 0, self.md(chunk, s_index - 1).right_free > 0)
        right = z3.And(end == self.B, e_index + 1 < self.N, self.md(chunk, e_index + 1).left_free > 0)
        return z3.Or(super().pcpu_free_refreshes_chunk(chunk, s_index, e_index, start, end), left, right)

    def pcpu_alloc_refresh_chunk(self, chunk: SymChunk54) -> SymChunk54:
        """Fix for ``chunk-hint-accurate-in-one-block``: forget the scan_hint, then a full scan."""
        return self.pcpu_chunk_refresh_hint(chunk.set(chunk_md=chunk.chunk_md.set(scan_hint=I(0))), True)

    def refreshed_right_free(self, block: SymBlockMd, start: Int) -> Int:
        """Fix for ``block-left-right-free-exact``: a promoted scan_hint that ends the block is its right free area."""
        return z3.If(start == self.B, block.contig_hint, I(0))

    def pcpu_block_update(self, block: SymBlockMd, start: Int, end: Int) -> SymBlockMd:
        """7.1.3's ``pcpu_block_update`` with the model's five fixes (numbered as there)."""
        contig = end - start
        sh, shs, ch, chs = block.scan_hint, block.scan_hint_start, block.contig_hint, block.contig_hint_start
        first_free = smin(block.first_free, start)
        left_free = z3.If(start == 0, contig, block.left_free)
        right_free = z3.If(end == block.nr_bits, contig, block.right_free)

        after = start > chs
        promote = z3.And(after, ch > sh)
        drop = z3.Or(z3.Not(after), z3.And(z3.Not(promote), start <= shs))  # fix 2
        gt_sh = z3.If(promote, ch, z3.If(drop, I(0), sh))
        gt_shs = z3.If(promote, chs, shs)

        better = z3.And(chs != 0, z3.Or(start == 0, ffs0(start) > ffs0(chs)))
        before = z3.And(z3.Not(better), start < chs)  # fix 1
        farther = z3.And(z3.Not(better), z3.Not(before), z3.Or(start > shs, ch > sh))
        stale = z3.Or(z3.And(start <= shs, ch > sh), z3.And(start > shs, ch == sh),  # fix 4
                      z3.And(start > chs, ch > sh))  # fix 8
        eq_sh = z3.If(better, z3.If(stale, I(0), sh),
                      z3.If(before, I(0), z3.If(farther, contig, sh)))
        eq_shs = z3.If(farther, start, shs)
        eq_chs = z3.If(better, start, chs)

        take = z3.And(start < chs, sh != 0, z3.Or(contig > sh, z3.And(contig == sh, start > shs)))  # fix 3
        lt_sh, lt_shs = z3.If(take, contig, sh), z3.If(take, start, shs)

        gt, eq = contig > ch, contig == ch
        return block.set(
            first_free=first_free,
            left_free=left_free,
            right_free=right_free,
            scan_hint=z3.If(gt, gt_sh, z3.If(eq, eq_sh, lt_sh)),
            scan_hint_start=z3.If(gt, gt_shs, z3.If(eq, eq_shs, lt_shs)),
            contig_hint=z3.If(gt, contig, ch),
            contig_hint_start=z3.If(gt, start, z3.If(eq, eq_chs, chs)),
        )
