"""``mainline-fixed``: ``mainline`` (7.1.3) plus the smallest fix for each of its findings, one override each.

The same three fixes, as a diff to the C, are ``docs/patches/mainline-fixed.patch`` (one patch per fix
beside it); tests/test_mainline_fixed.py holds this variant to the patched C of Debian 6.12 and 7.1.3
and runs the C search on it.  Model only: no Z3 encoding yet (``symbolic/subjects.py`` registers it
without one), so ``prove`` refuses it.

Not fixed here, stated: with the free path's ``chunk_md`` update working (fix 1), a free in a later
block can make a small area ``chunk_md``'s scan_hint after an allocation dropped the old one
(``scan_hint = 0`` reads as "nothing before the contig hint", not "unknown"); the next non-full refresh
promotes it and scans forward only, missing a larger area before it.  3x8, 7 ops:
``tests/release_traces/mainline-fixed__chunk-hint-accurate-in-one-block.json`` (docs/kernels.md).
"""

from __future__ import annotations

from pcpuverify.model.linux_4_14 import ffs0, pcpu_for_each_unpop_region
from pcpuverify.model.linux_5_4 import PcpuBlockMd, PcpuChunk54
from pcpuverify.model.mainline import Mainline


class MainlineFixed(Mainline):
    """Variant ``mainline-fixed``: 7.1.3 with fixes for chunk-hint-accurate-in-one-block (and
    chunk-hint-off-by-at-most-a-page), block-left-right-free-exact and scan-hint-before-contig-hint."""

    variant = "mainline-fixed"

    def pcpu_free_update_chunk_md(self, chunk: PcpuChunk54, s_index: int, start: int, end: int) -> None:
        """Fix for ``chunk-hint-accurate-in-one-block`` / ``chunk-hint-off-by-at-most-a-page``: ``end`` as a chunk
        offset, ``pcpu_block_off_to_off(s_index, end)``; 7.1.3 passes it block relative, so a free in any block
        but the first gives ``chunk_md`` an empty area and the chunk hint never learns of the freed run."""
        self.pcpu_block_update(
            chunk.chunk_md, self.pcpu_block_off_to_off(s_index, start), self.pcpu_block_off_to_off(s_index, end)
        )

    def pcpu_block_refresh_hint(self, chunk: PcpuChunk54, index: int) -> None:  # type: ignore[override]
        """Fix for ``block-left-right-free-exact``: a promoted scan_hint that ends the block is its right free area.

        7.1.3 clears ``right_free`` and scans only from the promoted hint's end, so when that hint was the
        block's right free run nothing sets ``right_free`` again.
        """
        block = chunk.md_blocks[index]
        alloc_map = self.pcpu_index_alloc_map(chunk, index)

        # promote scan_hint to contig_hint
        if block.scan_hint:
            start = block.scan_hint_start + block.scan_hint
            block.contig_hint_start = block.scan_hint_start
            block.contig_hint = block.scan_hint
            block.scan_hint = 0
        else:
            start = block.first_free
            block.contig_hint = 0

        block.right_free = block.contig_hint if start == self.PCPU_BITMAP_BLOCK_BITS else 0  # the fix

        # iterate over free areas and update the contig hints
        for rs, re in pcpu_for_each_unpop_region(alloc_map, start, self.PCPU_BITMAP_BLOCK_BITS):
            self.pcpu_block_update(block, rs, re)

    def pcpu_block_update(self, block: PcpuBlockMd, start: int, end: int) -> None:  # type: ignore[override]
        """Fix for ``scan-hint-before-contig-hint``: a free area as large as the contig hint but before it forgets
        the scan_hint (no scan_hint can be both before the contig hint and as large as it: "scan_hint_start >
        contig_hint_start iff scan_hint == contig_hint"); 7.1.3 makes the area the scan_hint."""
        contig = end - start

        block.first_free = min(block.first_free, start)
        if start == 0:
            block.left_free = contig

        if end == block.nr_bits:
            block.right_free = contig

        if contig > block.contig_hint:
            # promote the old contig_hint to be the new scan_hint
            if start > block.contig_hint_start:
                if block.contig_hint > block.scan_hint:
                    block.scan_hint_start = block.contig_hint_start
                    block.scan_hint = block.contig_hint
                elif start < block.scan_hint_start:
                    block.scan_hint = 0
            else:
                block.scan_hint = 0
            block.contig_hint_start = start
            block.contig_hint = contig
        elif contig == block.contig_hint:
            if block.contig_hint_start and (not start or ffs0(start) > ffs0(block.contig_hint_start)):
                # start has a better alignment so use it
                block.contig_hint_start = start
                if start < block.scan_hint_start and block.contig_hint > block.scan_hint:
                    block.scan_hint = 0
            elif start < block.contig_hint_start:  # the fix
                block.scan_hint = 0
            elif start > block.scan_hint_start or block.contig_hint > block.scan_hint:
                block.scan_hint_start = start
                block.scan_hint = contig
        else:
            # smaller than the contig_hint: the scan_hint only if larger or equal and farther
            if start < block.contig_hint_start and (
                contig > block.scan_hint or (contig == block.scan_hint and start > block.scan_hint_start)
            ):
                block.scan_hint_start = start
                block.scan_hint = contig
