"""``mainline-fixed``: ``mainline`` (7.1.3) plus the smallest fix for each of its findings, one override each.

The same nine fixes, as a diff to the C, are ``docs/patches/mainline-fixed.patch`` (one patch per fix
beside it); tests/test_kernel_fixes.py holds this variant to the patched C of Debian 6.12 and 7.1.3
and runs the C search on it.  Its Z3 encoding, with the same overrides, is
``symbolic/encode_mainline_fixed.py``.

Fix 3 of ``pcpu_block_update`` is for a break the other fixes unmask (the free path's ``chunk_md`` update
working): docs/kernels.md.  Whether each is the *smallest* fix is argued there, not proved.
"""

from __future__ import annotations

from pcpuverify.model.linux_4_14 import ffs0, pcpu_for_each_unpop_region
from pcpuverify.model.linux_5_4 import PcpuBlockMd, PcpuChunk54
from pcpuverify.model.mainline import Mainline
from pcpuverify.model.percpu import freed_area_reaches_a_free_neighbour


class MainlineFixed(Mainline):
    """Variant ``mainline-fixed``: 7.1.3 with fixes for chunk-hint-accurate-in-one-block (and
    chunk-hint-off-by-at-most-a-page), block-left-right-free-exact, scan-hint-before-contig-hint,
    block-contig-hint-exact, the stale chunk_md scan_hint (docs/kernels.md) and an equal scan_hint left before a
    better-aligned contig hint (scan-hint-before-contig-hint, docs/gallery.md 16), a free area clipped to its
    block where it reaches the next one (chunk-hint-off-by-at-most-a-page, docs/gallery.md 17), and a smaller
    scan_hint kept when a better-aligned contig hint moves past an equal area (block-contig-hint-exact,
    docs/gallery.md 18), and chunk_md's scan_hint promoted past an area it never saw (chunk-hint-accurate-in-one-block,
    docs/gallery.md 19)."""

    variant = "mainline-fixed"

    def pcpu_free_update_chunk_md(self, chunk: PcpuChunk54, s_index: int, start: int, end: int) -> None:
        """Fix for ``chunk-hint-accurate-in-one-block`` / ``chunk-hint-off-by-at-most-a-page``: ``end`` as a chunk
        offset, ``pcpu_block_off_to_off(s_index, end)``; 7.1.3 passes it block relative, so a free in any block
        but the first gives ``chunk_md`` an empty area and the chunk hint never learns of the freed run."""
        self.pcpu_block_update(
            chunk.chunk_md, self.pcpu_block_off_to_off(s_index, start), self.pcpu_block_off_to_off(s_index, end)
        )

    def pcpu_free_refreshes_chunk(self, chunk: PcpuChunk54, s_index: int, e_index: int, start: int, end: int) -> bool:
        """Fix for ``chunk-hint-off-by-at-most-a-page`` (3x4, 8 operations; docs/gallery.md 17): also refresh when
        the freed area reaches into a neighbouring block's free bits, as ``fixed`` does for the 2017 posting
        (gallery 3, the same bug, in every release since 4.14).

        7.1.3 updates ``chunk_md`` with the freed area clipped to its block.  Two such frees, one on each side
        of a free block, leave the chunk hint short by up to two pages less two bits, against the comment
        above the test: "The contig_hint may be off by up to a page".
        """
        return super().pcpu_free_refreshes_chunk(chunk, s_index, e_index, start, end) or \
            freed_area_reaches_a_free_neighbour(chunk.md_blocks, s_index, e_index, start, end,
                                                self.PCPU_BITMAP_BLOCK_BITS)

    def pcpu_alloc_refresh_chunk(self, chunk: PcpuChunk54) -> None:
        """Fix for ``chunk-hint-accurate-in-one-block`` (3x8, 15 operations; docs/gallery.md 19): forget the
        scan_hint and scan the whole chunk when an allocation breaks its contig hint, as the comment above the
        call says ("The only time a full chunk scan is required is if the chunk contig hint is broken"); 7.1.3
        passes ``full_scan`` false and promotes the scan_hint.

        ``chunk_md``'s scans see each block's contig hint and the runs across block edges, never an area a block
        keeps apart because its contig hint is as large and better aligned; a scan_hint set past such an area,
        then promoted, scans forward only and misses it.  The scan_hint goes too: a full scan keeps it, and
        one that lay past the old contig hint, as large, can then lie before the new one (the 2x8 proofs'
        counterexample to induction for ``scan-hint-before-contig-hint``).
        """
        chunk.chunk_md.scan_hint = 0
        self.pcpu_chunk_refresh_hint(chunk, True)

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
        """Five fixes, each a change of one statement of 7.1.3's ``pcpu_block_update``:

        1. ``scan-hint-before-contig-hint``: a free area as large as the contig hint but before it forgets the
           scan_hint (none can be both before the contig hint and as large: "scan_hint_start >
           contig_hint_start iff scan_hint == contig_hint"); 7.1.3 makes the area the scan_hint.
        2. ``block-contig-hint-exact``: a new, larger area that starts *at* the scan_hint (and so contains
           it) forgets the scan_hint; 7.1.3 tests ``start < block->scan_hint_start`` and keeps it, a stale
           hint inside the new contig hint, which the next refresh promotes and scans forward from,
           splitting the free run.
        3. ``chunk-hint-accurate-in-one-block`` (3x8, once the free path reaches ``chunk_md``): a smaller area
           before the contig hint becomes the scan_hint only in place of one.  ``scan_hint == 0`` also
           means "dropped by an allocation that overlapped it" (``pcpu_block_update_hint_alloc``), not only
           "nothing before the contig hint"; 7.1.3 then makes any such area "the largest known before the
           contig hint", and the next non-full refresh promotes it and scans forward only, missing a larger
           area before it.  The cost: a scan_hint is no longer made from a lone smaller area, so some scans
           start from ``first_free``.
        4. ``scan-hint-before-contig-hint`` and ``scan-hint-clear-of-contig-hint`` (found by the proofs, 1x8): an
           area as large as the contig hint that wins it by a better alignment moves ``contig_hint_start`` past
           an equal scan_hint, which is then an equal area *before* the contig hint, or onto a smaller one,
           which is then *inside* it; 7.1.3 drops the scan_hint only when it is smaller and now strictly after.
           Forget it in both cases (``start <= scan_hint_start``, as fix 2 does for a larger area).
        8. ``block-contig-hint-exact`` and ``chunk-hint-accurate-in-one-block`` (1x16, 13 operations; docs/gallery.md
           18): an area that wins the contig hint by a better alignment *after* it leaves the old contig hint, an
           area as large, before the new one and recorded nowhere, while a smaller scan_hint before it still
           stands for "the largest known contiguous area before the contig hint".  A smaller free area between
           the two then becomes the scan_hint ("larger than or equal and farther"), ``pcpu_next_hint`` skips the
           old area, and the refresh after the next allocation breaks the contig hint promotes the scan_hint and
           scans forward only: the block's contig hint falls short of a free run inside it.  Forget a smaller
           scan_hint when the contig hint moves forward; with fix 3 zero then stays "unknown" until a full scan.
        """
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
                elif start <= block.scan_hint_start:  # fix 2
                    block.scan_hint = 0
            else:
                block.scan_hint = 0
            block.contig_hint_start = start
            block.contig_hint = contig
        elif contig == block.contig_hint:
            if block.contig_hint_start and (not start or ffs0(start) > ffs0(block.contig_hint_start)):
                # start has a better alignment so use it
                if start > block.contig_hint_start and block.contig_hint > block.scan_hint:  # fix 8
                    block.scan_hint = 0
                block.contig_hint_start = start
                if (start <= block.scan_hint_start and block.contig_hint > block.scan_hint) or (
                        start > block.scan_hint_start and block.contig_hint == block.scan_hint):  # fix 4
                    block.scan_hint = 0
            elif start < block.contig_hint_start:  # fix 1
                block.scan_hint = 0
            elif start > block.scan_hint_start or block.contig_hint > block.scan_hint:
                block.scan_hint_start = start
                block.scan_hint = contig
        else:
            # smaller than the contig_hint: the scan_hint only if larger or equal and farther
            if start < block.contig_hint_start and block.scan_hint and (  # fix 3
                contig > block.scan_hint or (contig == block.scan_hint and start > block.scan_hint_start)
            ):
                block.scan_hint_start = start
                block.scan_hint = contig
