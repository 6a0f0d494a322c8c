"""The named variants of the allocator; each overrides only the functions its patch changes."""

from __future__ import annotations

from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE
from pcpuverify.model.linux_4_14 import Linux414
from pcpuverify.model.linux_5_4 import Linux54
from pcpuverify.model.mainline import Mainline
from pcpuverify.model.mainline_fixed import MainlineFixed
from pcpuverify.model.percpu import ALIGN, PcpuAllocator, freed_area_reaches_a_free_neighbour


class V1(PcpuAllocator):
    """Variant ``v1``: PATCH 09 + PATCH 10 as posted ("add optimizations on allocation path")."""

    variant = "v1"

    def pcpu_find_block_fit(self, chunk: PcpuChunk, bit_size: int, align: int, pop_only: bool) -> int:
        """PATCH 10: fail fast when the request can't fit the chunk's contig hint at its alignment."""
        # check chunk->contig_hint to see if alloc can fit - see note above
        block_off = ALIGN(chunk.contig_hint_start, align) - chunk.contig_hint_start
        if block_off + bit_size > chunk.contig_hint:
            return -1
        return super().pcpu_find_block_fit(chunk, bit_size, align, pop_only)

    def pcpu_alloc_area_search(self, chunk: PcpuChunk, bit_size: int, align_mask: int, start: int) -> int:
        """PATCH 10: the search window is bounded to ``start + bit_size + PCPU_BITMAP_BLOCK_SIZE``.

        "should in reality never be hit as the contig_hint should be a valid
        placement" -- the window is not clipped to the bitmap's size.
        """
        end = start + bit_size + self.PCPU_BITMAP_BLOCK_SIZE
        bit_off = chunk.alloc_map.bitmap_find_next_zero_area(end, start, bit_size, align_mask)
        if bit_off >= end:
            return -1
        return bit_off


class Fixed(V1):
    """Variant ``fixed``: ``v1`` plus the smallest change that removes each violation pcpu-verify finds.

    One override per fix; each names the invariants it restores, whose
    minimised traces show why (docs/gallery.md, tests/traces/).
    """

    variant = "fixed"

    def pcpu_is_populated(
        self, chunk: PcpuChunk, index: int, block_off: int, bit_size: int
    ) -> tuple[bool, int | None]:
        """Fix 1 (pop-only-alloc-on-populated-pages): page numbers from byte offsets, next_index in blocks.

        As v4.14's ``pcpu_is_populated``: ``PFN_DOWN(bit_off * PCPU_MIN_ALLOC_SIZE)``
        and a next block of ``re * PAGE_SIZE / (PCPU_BITMAP_BLOCK_SIZE * PCPU_MIN_ALLOC_SIZE)``.
        """
        off = self.pcpu_block_off_to_off(index, block_off)
        page_start = self.PFN_DOWN(off * PCPU_MIN_ALLOC_SIZE)
        page_end = self.PFN_UP((off + bit_size) * PCPU_MIN_ALLOC_SIZE)
        rs, re = self.pcpu_next_unpop(chunk, page_start, page_end)
        if rs >= page_end:
            return True, None
        return False, re * self.PAGE_SIZE // (self.PCPU_BITMAP_BLOCK_SIZE * PCPU_MIN_ALLOC_SIZE)

    def pcpu_alloc_area_search(self, chunk: PcpuChunk, bit_size: int, align_mask: int, start: int) -> int:
        """Fix 2 (bitmap-access-in-bounds): the search window stops at the end of the bitmap (as 8c43004af016)."""
        end = min(start + bit_size + self.PCPU_BITMAP_BLOCK_SIZE, self.pcpu_nr_pages_to_bits(chunk))
        bit_off = chunk.alloc_map.bitmap_find_next_zero_area(end, start, bit_size, align_mask)
        if bit_off >= end:
            return -1
        return bit_off

    def pcpu_block_update_hint_alloc(self, chunk: PcpuChunk, bit_off: int, bit_size: int) -> bool:
        """Fixes 3 and 4: when the chunk's metadata must be refreshed after an allocation.

        Fix 3 (chunk-contig-hint-not-above-free-run): when the area *overlaps*
        the chunk's hint.  PATCH 09 only asks whether it *starts* inside;
        ``pcpu_find_block_fit`` can place it earlier, running into the hint.

        Fix 4 (nr-empty-pop-pages-matches-bitmap): when the area lands in an
        empty page (a block whose hint spans it: one block per page).  Only the
        chunk refresh recounts ``nr_empty_pop_pages``.
        """
        hint_start, hint_end = chunk.contig_hint_start, chunk.contig_hint_start + chunk.contig_hint
        s_index, e_index, _, _ = self._block_range(bit_off, bit_size)
        B = self.PCPU_BITMAP_BLOCK_SIZE
        fills_empty_page = any(chunk.md_blocks[i].contig_hint == B for i in range(s_index, e_index + 1))
        update_chunk = super().pcpu_block_update_hint_alloc(chunk, bit_off, bit_size)
        overlaps_hint = bit_off < hint_end and hint_start < bit_off + bit_size
        return update_chunk or overlaps_hint or fills_empty_page

    def pcpu_free_refreshes_chunk(self, chunk: PcpuChunk, s_index: int, e_index: int, start: int, end: int) -> bool:
        """Fix 5 (chunk-contig-hint-exact-below-a-block, chunk-contig-hint-within-a-block).

        Also refresh when the freed run reaches into a neighbouring block's
        free bits.  PATCH 09 grows the freed area only within its own block,
        then raises the chunk hint to that block's hint: a run that goes on
        into the previous or next block is counted short.  The cover letter
        allows a hint "smaller than what it could allocate by up to a block",
        but two such frees, one on each side of a free block, leave it short
        by up to two blocks less two bits; and below a block the seed's "a
        check occurs and the hint is kept accurate" does not hold either.
        In C, after the test of PATCH 09::

            || (!start && s_index && (s_block - 1)->right_free)
            || (end == PCPU_BITMAP_BLOCK_SIZE && e_index + 1 < pcpu_nr_pages_to_blocks(chunk)
                && (e_block + 1)->left_free)
        """
        return super().pcpu_free_refreshes_chunk(chunk, s_index, e_index, start, end) or \
            freed_area_reaches_a_free_neighbour(chunk.md_blocks, s_index, e_index, start, end,
                                                self.PCPU_BITMAP_BLOCK_SIZE)

    def pcpu_chunk_populated(self, chunk: PcpuChunk, page_start: int, page_end: int, for_alloc: bool = False) -> None:
        """Fix 6 (nr-empty-pop-pages-matches-bitmap): pages populated for an allocation are not empty.

        As v4.14 (``for_alloc``): PATCH 09 dropped the old ``occ_pages``
        correction and counted them as empty.
        """
        nr = page_end - page_start
        chunk.populated.bitmap_set(page_start, nr)
        chunk.nr_populated += nr
        if not for_alloc:
            chunk.nr_empty_pop_pages += nr
            self.pcpu_nr_empty_pop_pages += nr

    def pcpu_alloc_populate(self, chunk: PcpuChunk, off: int, size: int) -> None:
        """Fix 6, the caller: ``pcpu_chunk_populated(chunk, rs, re, true)``."""
        page_start = self.PFN_DOWN(off)
        page_end = self.PFN_UP(off + size)
        for rs, re in self.pcpu_unpop_regions(chunk, page_start, page_end):
            self.pcpu_chunk_populated(chunk, rs, re, for_alloc=True)

    def pcpu_begin_fill_bits(self, pcpu_reserved_offset: int) -> int:
        """Fix 7 (static-overlap-hidden): hide every bit that holds a static byte (round up)."""
        return -(-pcpu_reserved_offset // PCPU_MIN_ALLOC_SIZE)


VARIANTS: dict[str, type[PcpuAllocator]] = {
    "v1": V1,
    "v1-patch09": PcpuAllocator,
    "fixed": Fixed,
    "linux-4.14": Linux414,
    "linux-5.4": Linux54,
    "mainline": Mainline,
    "mainline-fixed": MainlineFixed,
}


class UnknownVariant(ValueError):
    """A variant name that is not in VARIANTS."""


def variant_class(name: str) -> type[PcpuAllocator]:
    try:
        return VARIANTS[name]
    except KeyError:
        raise UnknownVariant(
            f"unknown variant {name!r}; choose one of: {', '.join(sorted(VARIANTS))}"
        ) from None
