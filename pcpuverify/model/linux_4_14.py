"""mm/percpu.c of Linux 4.14 (v4.14.5): the bitmap allocator as merged, ported line for line.

The series merged for 4.14 is the posted one (PATCH 09 + 10, variant ``v1``)
reworked in review, so this variant overrides most of the allocator core;
what it keeps (the page/bit/block conversions, the populated-page
iterators, ``pcpu_chunk_relocate``, ``pcpu_chunk_depopulated``) is
unchanged text.  The chunk renames its fields (``free_bytes``,
``contig_bits``, ``contig_bits_start``, ``first_bit``), so it has a
dataclass of its own, dumped with those names.

A method's docstring (or its section's comment) cites the upstream commit
subject that made its 4.14 text where that subject is known.  Units are
the C code's: bits unless a name says bytes or pages.

Over 600 lines: one release's allocator core, function by function, kept in one file so that
it reads beside that release's mm/percpu.c.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pcpuverify.model.bitmap import Bitmap
from pcpuverify.model.chunk import PcpuBitmapMd
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE
from pcpuverify.model.percpu import ALIGN, PcpuAllocator, fls
from pcpuverify.model.release_chunk import ReleaseChunk


def ffs0(x: int) -> int:
    """``__ffs(x)``: 0-based index of the least significant set bit (undefined for 0, never called so).

    Renamed because a ``__`` name inside a class body is mangled by Python.
    """
    return (x & -x).bit_length() - 1


def pcpu_next_unpop(bitmap: Bitmap, rs: int, end: int) -> tuple[int, int]:
    """4.14 ``pcpu_next_unpop(bitmap, &rs, &re, end)`` ("percpu: generalize bitmap (un)populated iterators")."""
    rs = bitmap.find_next_zero_bit(end, rs)
    re = bitmap.find_next_bit(end, rs + 1)
    return rs, re


def pcpu_for_each_unpop_region(bitmap: Bitmap, start: int, end: int) -> list[tuple[int, int]]:
    """``pcpu_for_each_unpop_region(bitmap, rs, re, start, end)`` as a list: the clear runs of ``bitmap``."""
    regions = []
    rs, re = pcpu_next_unpop(bitmap, start, end)
    while rs < re:
        regions.append((rs, re))
        rs, re = pcpu_next_unpop(bitmap, re + 1, end)
    return regions


@dataclass
class PcpuChunk414(ReleaseChunk):
    """4.14 ``struct pcpu_chunk`` (mm/percpu-internal.h): the chunk hint is ``contig_bits``, ``first_bit``."""

    block_type: ClassVar[type] = PcpuBitmapMd  # 4.14's struct pcpu_block_md has the posting's fields

    contig_bits: int = 0  # max contiguous size hint
    contig_bits_start: int = 0  # contig_bits starting offset
    first_bit: int = 0  # no free below this

    def dump(self) -> dict[str, object]:
        """The state dump with 4.14's field names."""
        return self.dump_with(
            {"contig_bits": self.contig_bits, "contig_bits_start": self.contig_bits_start, "first_bit": self.first_bit}
        )


class Linux414(PcpuAllocator):
    """Variant ``linux-4.14``: mm/percpu.c of v4.14.5, the bitmap allocator as merged.

    Differences from ``v1`` (PATCH 09 + 10 as posted), each an override below:
    slots in bytes; ``free_bytes``/``contig_bits``/``first_bit``; the block
    iterators ``pcpu_next_md_free_region`` and ``pcpu_next_fit_region`` (with
    "percpu: fix iteration to prevent skipping over block"); the chunk hint
    refreshed from the blocks with ``pcpu_chunk_update``; ``pcpu_block_update``
    shared by the refresh and the free path; the alloc path's e_block
    handling; the free path's page test; ``pcpu_is_populated`` in bits;
    ``pcpu_alloc_area`` unbounded by the bitmap; ``for_alloc`` population.
    ``FirstChunkInit`` is not ported for this variant yet.

    It derives from ``PcpuAllocator`` (PATCH 09), not ``V1``: both of PATCH
    10's overrides (``pcpu_find_block_fit``, ``pcpu_alloc_area_search``) are
    replaced by 4.14's text, and ``variants`` imports this module.
    """

    variant = "linux-4.14"
    ports_first_chunk = False

    PCPU_SLOT_BASE_SHIFT = 5  # 4.14: slots are computed in bytes

    def __init__(self, block_bits: int, unit_pages: int) -> None:
        super().__init__(block_bits, unit_pages)
        # PCPU_BITMAP_BLOCK_SIZE is PAGE_SIZE bytes in 4.14; the model's attribute of
        # that name keeps the bits per block, which is 4.14's PCPU_BITMAP_BLOCK_BITS
        self.PCPU_BITMAP_BLOCK_BITS = block_bits
        self.pcpu_unit_size = unit_pages * self.PAGE_SIZE
        # pcpu_setup_first_chunk: pcpu_nr_slots = __pcpu_size_to_slot(pcpu_unit_size) + 2
        self.pcpu_nr_slots = self._pcpu_size_to_slot(self.pcpu_unit_size) + 2

    # -- mm/percpu-internal.h ---------------------------------------------------

    def pcpu_chunk_nr_blocks(self, chunk: PcpuChunk414) -> int:
        """``chunk->nr_pages * PAGE_SIZE / PCPU_BITMAP_BLOCK_SIZE``: one block per page."""
        return chunk.nr_pages * self.PAGE_SIZE // self.PAGE_SIZE

    def pcpu_nr_pages_to_map_bits(self, pages: int) -> int:
        return pages * self.PAGE_SIZE // PCPU_MIN_ALLOC_SIZE

    def pcpu_chunk_map_bits(self, chunk: PcpuChunk414) -> int:
        return self.pcpu_nr_pages_to_map_bits(chunk.nr_pages)

    # -- slots: in bytes ("percpu: replace area map allocator with bitmap allocator", as merged)

    def _pcpu_size_to_slot(self, size: int) -> int:
        """``__pcpu_size_to_slot`` (one underscore: Python mangles two inside a class)."""
        highbit = fls(size)  # size is in bytes
        return max(highbit - self.PCPU_SLOT_BASE_SHIFT + 2, 1)

    def pcpu_size_to_slot(self, size: int) -> int:
        if size == self.pcpu_unit_size:
            return self.pcpu_nr_slots - 1
        return self._pcpu_size_to_slot(size)

    def pcpu_chunk_slot(self, chunk: PcpuChunk414) -> int:
        if chunk.free_bytes < PCPU_MIN_ALLOC_SIZE or chunk.contig_bits == 0:
            return 0
        return self.pcpu_size_to_slot(chunk.free_bytes)

    # -- metadata free area iterators ("percpu: use metadata blocks to update the chunk contig hint",
    #    "percpu: update pcpu_find_block_fit to use an iterator",
    #    "percpu: fix iteration to prevent skipping over block") ---------------------------------

    def pcpu_next_md_free_region(self, chunk: PcpuChunk414, bit_off: int) -> tuple[int, int]:
        """``pcpu_next_md_free_region(chunk, &bit_off, &bits)``: the next hint free area, ``(bit_off, bits)``.

        Aggregates ``contig_hint`` and right/left free areas across blocks.
        The ``block_off = 0`` reset is "percpu: fix iteration to prevent
        skipping over block".
        """
        B = self.PCPU_BITMAP_BLOCK_BITS
        i = self.pcpu_off_to_block_index(bit_off)
        block_off = self.pcpu_off_to_block_off(bit_off)
        bits = 0
        while i < self.pcpu_chunk_nr_blocks(chunk):
            block = chunk.md_blocks[i]
            # handles contig area across blocks
            if bits:
                bits += block.left_free
                if block.left_free == B:
                    i += 1
                    continue
                return bit_off, bits

            # a contig_hint to check, not checked before (block_off), not the right free area
            bits = block.contig_hint
            if bits and block.contig_hint_start >= block_off and bits + block.contig_hint_start < B:
                bit_off = self.pcpu_block_off_to_off(i, block.contig_hint_start)
                return bit_off, bits
            # reset to satisfy the second predicate above
            block_off = 0

            bits = block.right_free
            bit_off = (i + 1) * B - block.right_free
            i += 1
        return bit_off, bits

    def pcpu_next_fit_region(
        self, chunk: PcpuChunk414, alloc_bits: int, align: int, bit_off: int
    ) -> tuple[int, int]:
        """``pcpu_next_fit_region(chunk, alloc_bits, align, &bit_off, &bits)``: the next area that fits.

        Returns ``(bit_off, bits)``; ``bit_off`` is ``pcpu_chunk_map_bits`` when
        none is left.  ``block->first_free`` is returned when the request fits
        the block's contig hint, to try first fit before the hint.
        """
        B = self.PCPU_BITMAP_BLOCK_BITS
        i = self.pcpu_off_to_block_index(bit_off)
        block_off = self.pcpu_off_to_block_off(bit_off)
        bits = 0
        while i < self.pcpu_chunk_nr_blocks(chunk):
            block = chunk.md_blocks[i]
            # handles contig area across blocks
            if bits:
                bits += block.left_free
                if bits >= alloc_bits:
                    return bit_off, bits
                if block.left_free == B:
                    i += 1
                    continue

            # check block->contig_hint
            bits = ALIGN(block.contig_hint_start, align) - block.contig_hint_start
            # the block offset tells whether this hint was checked in the prior iteration
            if block.contig_hint and block.contig_hint_start >= block_off and block.contig_hint >= bits + alloc_bits:
                start = self.pcpu_next_fit_start(block, alloc_bits)
                bits += alloc_bits + block.contig_hint_start - start
                bit_off = self.pcpu_block_off_to_off(i, start)
                return bit_off, bits
            # reset to satisfy the second predicate above
            block_off = 0

            bit_off = ALIGN(B - block.right_free, align)
            bits = B - bit_off
            bit_off = self.pcpu_block_off_to_off(i, bit_off)
            if bits >= alloc_bits:
                return bit_off, bits
            i += 1

        # no valid offsets were found - fail condition
        return self.pcpu_chunk_map_bits(chunk), bits

    def pcpu_next_fit_start(self, block: PcpuBitmapMd, alloc_bits: int) -> int:
        """Where ``pcpu_next_fit_region`` starts scanning a block that fits: ``block->first_free`` in 4.14.

        A function of its own only because "percpu: use block scan_hint to
        only scan forward" (5.2) replaced this expression by ``pcpu_next_hint``.
        """
        return block.first_free

    def pcpu_md_free_regions(self, chunk: PcpuChunk414, bit_off: int) -> list[tuple[int, int]]:
        """``pcpu_for_each_md_free_region(chunk, bit_off, bits)`` from ``bit_off``, as a list."""
        regions = []
        bit_off, bits = self.pcpu_next_md_free_region(chunk, bit_off)
        while bit_off < self.pcpu_chunk_map_bits(chunk):
            regions.append((bit_off, bits))
            bit_off, bits = self.pcpu_next_md_free_region(chunk, bit_off + bits + 1)
        return regions

    # -- hints ------------------------------------------------------------------

    def pcpu_cnt_pop_pages(self, chunk: PcpuChunk414, bit_off: int, bits: int) -> int:
        """4.14 ``pcpu_cnt_pop_pages(chunk, bit_off, bits)``: populated pages wholly inside the area."""
        page_start = self.PFN_UP(bit_off * PCPU_MIN_ALLOC_SIZE)
        page_end = self.PFN_DOWN((bit_off + bits) * PCPU_MIN_ALLOC_SIZE)
        if page_start >= page_end:
            return 0
        return chunk.populated.bitmap_weight(page_end) - chunk.populated.bitmap_weight(page_start)

    def pcpu_chunk_update(self, chunk: PcpuChunk414, bit_off: int, bits: int) -> None:
        """``pcpu_chunk_update``: raise the chunk hint to a free area ("percpu: keep track of the best offset
        for contig hints": on a tie, the start with the best alignment)."""
        if bits > chunk.contig_bits:
            chunk.contig_bits_start = bit_off
            chunk.contig_bits = bits
        elif (
            bits == chunk.contig_bits
            and chunk.contig_bits_start
            and (not bit_off or ffs0(bit_off) > ffs0(chunk.contig_bits_start))
        ):
            # use the start with the best alignment
            chunk.contig_bits_start = bit_off

    def pcpu_chunk_refresh_hint(self, chunk: PcpuChunk414) -> None:
        """``pcpu_chunk_refresh_hint`` ("percpu: use metadata blocks to update the chunk contig hint").

        Updates ``contig_bits``, ``contig_bits_start`` and ``nr_empty_pop_pages``
        (chunk and global, the global not for the reserved chunk) from the
        free areas the blocks' hints describe, from ``first_bit``.
        """
        # clear metadata
        chunk.contig_bits = 0

        bit_off = chunk.first_bit
        nr_empty_pop_pages = 0
        for region_off, bits in self.pcpu_md_free_regions(chunk, bit_off):
            self.pcpu_chunk_update(chunk, region_off, bits)
            nr_empty_pop_pages += self.pcpu_cnt_pop_pages(chunk, region_off, bits)

        # the chunk keeps its previous count, so the delta updates the global one
        if chunk is not self.pcpu_reserved_chunk:
            self.pcpu_nr_empty_pop_pages += nr_empty_pop_pages - chunk.nr_empty_pop_pages
        chunk.nr_empty_pop_pages = nr_empty_pop_pages

    def pcpu_block_update(self, block: PcpuBitmapMd, start: int, end: int) -> None:
        """``pcpu_block_update``: a block given the whole free area ``[start, end)`` within it.

        ("percpu: update free path to take advantage of contig hints"; the
        tie on the best-aligned start is "percpu: keep track of the best
        offset for contig hints".)
        """
        contig = end - start

        block.first_free = min(block.first_free, start)
        if start == 0:
            block.left_free = contig

        if end == self.PCPU_BITMAP_BLOCK_BITS:
            block.right_free = contig

        if contig > block.contig_hint:
            block.contig_hint_start = start
            block.contig_hint = contig
        elif block.contig_hint_start and contig == block.contig_hint and (
            not start or ffs0(start) > ffs0(block.contig_hint_start)
        ):
            # use the start with the best alignment
            block.contig_hint_start = start

    def pcpu_block_refresh_hint(self, chunk: PcpuChunk414, index: int) -> None:
        """4.14 ``pcpu_block_refresh_hint``: rescan block ``index`` from its ``first_free``."""
        block = chunk.md_blocks[index]
        alloc_map = self.pcpu_index_alloc_map(chunk, index)

        # clear hints
        block.contig_hint = 0
        block.left_free = block.right_free = 0

        # iterate over free areas and update the contig hints
        for rs, re in pcpu_for_each_unpop_region(alloc_map, block.first_free, self.PCPU_BITMAP_BLOCK_BITS):
            self.pcpu_block_update(block, rs, re)

    def pcpu_block_update_hint_alloc(self, chunk: PcpuChunk414, bit_off: int, bits: int) -> None:  # type: ignore[override]
        """4.14 ``pcpu_block_update_hint_alloc`` ("percpu: update alloc path to only scan if contig hints are broken").

        Offsets are computed on an inclusive range, so ``e_index`` is the
        last block of the area; an e_block broken at its contig hint is
        rescanned; the chunk is refreshed (``pcpu_chunk_refresh_hint``) iff the
        area starts inside ``contig_bits``.
        """
        B = self.PCPU_BITMAP_BLOCK_BITS
        s_index = self.pcpu_off_to_block_index(bit_off)
        e_index = self.pcpu_off_to_block_index(bit_off + bits - 1)
        s_off = self.pcpu_off_to_block_off(bit_off)
        e_off = self.pcpu_off_to_block_off(bit_off + bits - 1) + 1

        s_block = chunk.md_blocks[s_index]
        e_block = chunk.md_blocks[e_index]

        # Update s_block: first_free if the allocation takes its place, a scan if the hint breaks.
        if s_off == s_block.first_free:
            s_block.first_free = self.pcpu_index_alloc_map(chunk, s_index).find_next_zero_bit(B, s_off + bits)

        if s_block.contig_hint_start <= s_off < s_block.contig_hint_start + s_block.contig_hint:
            # block contig hint is broken - scan to fix it
            self.pcpu_block_refresh_hint(chunk, s_index)
        else:
            # update left and right contig manually
            s_block.left_free = min(s_block.left_free, s_off)
            if s_index == e_index:
                s_block.right_free = min(s_block.right_free, B - e_off)
            else:
                s_block.right_free = 0

        # Update e_block.
        if s_index != e_index:
            # the allocation across blocks ends along the left part of e_block
            e_block.first_free = self.pcpu_index_alloc_map(chunk, e_index).find_next_zero_bit(B, e_off)

            e_end = e_index  # C: e_block, a pointer the in-between loop stops at
            if e_off == B:
                # reset the block
                e_end += 1
            else:
                if e_off > e_block.contig_hint_start:
                    # contig hint is broken - scan to fix it
                    self.pcpu_block_refresh_hint(chunk, e_index)
                else:
                    e_block.left_free = 0
                    e_block.right_free = min(e_block.right_free, B - e_off)

            # update in-between md_blocks
            for i in range(s_index + 1, e_end):
                block = chunk.md_blocks[i]
                block.contig_hint = 0
                block.left_free = 0
                block.right_free = 0

        # a full chunk scan is required only if the chunk contig hint is broken
        if chunk.contig_bits_start <= bit_off < chunk.contig_bits_start + chunk.contig_bits:
            self.pcpu_chunk_refresh_hint(chunk)

    def pcpu_block_update_hint_free(self, chunk: PcpuChunk414, bit_off: int, bits: int) -> None:  # type: ignore[override]
        """4.14 ``pcpu_block_update_hint_free`` ("percpu: update free path to take advantage of contig hints").

        The free area is grown to the extent of free bits within its blocks;
        the chunk is refreshed when the free makes a page free, a block free
        or spans blocks, else raised with ``pcpu_chunk_update`` to the start
        block's hint ("contig_bits may be off by up to a page").
        """
        B = self.PCPU_BITMAP_BLOCK_BITS
        s_index = self.pcpu_off_to_block_index(bit_off)
        e_index = self.pcpu_off_to_block_index(bit_off + bits - 1)
        s_off = self.pcpu_off_to_block_off(bit_off)
        e_off = self.pcpu_off_to_block_off(bit_off + bits - 1) + 1

        s_block = chunk.md_blocks[s_index]
        e_block = chunk.md_blocks[e_index]

        # the free area's start and end within their blocks, skipping the scan at a contig hint
        start = s_off
        if s_off == s_block.contig_hint + s_block.contig_hint_start:
            start = s_block.contig_hint_start
        else:
            # find_last_bit returns the starting bit when there is no last bit
            l_bit = self.pcpu_index_alloc_map(chunk, s_index).find_last_bit(start)
            start = 0 if start == l_bit else l_bit + 1

        end = e_off
        if e_off == e_block.contig_hint_start:
            end = e_block.contig_hint_start + e_block.contig_hint
        else:
            end = self.pcpu_index_alloc_map(chunk, e_index).find_next_bit(B, end)

        # update s_block
        e_off = end if s_index == e_index else B
        self.pcpu_block_update(s_block, start, e_off)

        # freeing in the same block
        if s_index != e_index:
            # update e_block
            self.pcpu_block_update(e_block, 0, end)

            # reset md_blocks in the middle
            for i in range(s_index + 1, e_index):
                block = chunk.md_blocks[i]
                block.first_free = 0
                block.contig_hint_start = 0
                block.contig_hint = B
                block.left_free = B
                block.right_free = B

        # refresh when the free makes a page free, a block free, or spans blocks
        page_bits = min(self.pcpu_bits_per_page(), B)
        if ALIGN_DOWN(end, page_bits) > ALIGN(start, page_bits) or s_index != e_index:
            self.pcpu_chunk_refresh_hint(chunk)
        else:
            self.pcpu_chunk_update(chunk, self.pcpu_block_off_to_off(s_index, start), s_block.contig_hint)

    def pcpu_bits_per_page(self) -> int:
        """``PCPU_BITS_PER_PAGE = PAGE_SIZE >> PCPU_MIN_ALLOC_SHIFT`` (include/linux/percpu.h)."""
        return self.PAGE_SIZE // PCPU_MIN_ALLOC_SIZE

    # -- allocation path --------------------------------------------------------

    def pcpu_is_populated(  # type: ignore[override]
        self, chunk: PcpuChunk414, bit_off: int, bits: int
    ) -> tuple[bool, int | None]:
        """4.14 ``pcpu_is_populated(chunk, bit_off, bits, &next_off)``: ``(populated, next_off)``.

        Offsets in bits; ``next_off`` (C's out parameter, in bits) is only
        written when the area is not populated.  The signature is no longer
        PATCH 09's ``(chunk, index, block_off, bit_size)``.
        """
        page_start = self.PFN_DOWN(bit_off * PCPU_MIN_ALLOC_SIZE)
        page_end = self.PFN_UP((bit_off + bits) * PCPU_MIN_ALLOC_SIZE)

        rs = page_start
        rs, re = pcpu_next_unpop(chunk.populated, rs, page_end)
        if rs >= page_end:
            return True, None
        return False, re * self.PAGE_SIZE // PCPU_MIN_ALLOC_SIZE

    def pcpu_find_block_fit(self, chunk: PcpuChunk414, alloc_bits: int, align: int, pop_only: bool) -> int:  # type: ignore[override]
        """4.14 ``pcpu_find_block_fit``: the bit offset to start searching, or -1.

        "percpu: skip chunks if the alloc does not fit in the contig hint";
        then ``pcpu_for_each_fit_region`` from ``first_bit``.
        """
        # check chunk->contig_bits to see if alloc can fit
        bit_off = ALIGN(chunk.contig_bits_start, align) - chunk.contig_bits_start
        if bit_off + alloc_bits > chunk.contig_bits:
            return -1

        bit_off = chunk.first_bit
        bit_off, bits = self.pcpu_next_fit_region(chunk, alloc_bits, align, bit_off)
        while bit_off < self.pcpu_chunk_map_bits(chunk):
            if not pop_only:
                break
            populated, next_off = self.pcpu_is_populated(chunk, bit_off, bits)
            if populated:
                break
            assert next_off is not None
            bit_off = next_off
            bits = 0
            # the for loop's increment
            bit_off, bits = self.pcpu_next_fit_region(chunk, alloc_bits, align, bit_off + bits)

        if bit_off == self.pcpu_chunk_map_bits(chunk):
            return -1
        return bit_off

    def pcpu_alloc_area(self, chunk: PcpuChunk414, alloc_bits: int, align: int, start: int) -> int:  # type: ignore[override]
        """4.14 ``pcpu_alloc_area``: allocate from ``start``; the byte offset, or -1.

        The search window is ``start + alloc_bits + PCPU_BITMAP_BLOCK_BITS``,
        not clipped to the bitmap (as PATCH 10); ``first_bit`` is moved past
        an area that starts on it ("percpu: add first_bit to keep track of
        the first free in the bitmap").
        """
        align_mask = (align - 1) if align else 0

        oslot = self.pcpu_chunk_slot(chunk)

        # search to find a fit
        end = start + alloc_bits + self.PCPU_BITMAP_BLOCK_BITS
        bit_off = chunk.alloc_map.bitmap_find_next_zero_area(end, start, alloc_bits, align_mask)
        if bit_off >= end:
            return -1

        # update alloc map
        chunk.alloc_map.bitmap_set(bit_off, alloc_bits)
        # update boundary map
        chunk.bound_map.set_bit(bit_off)
        chunk.bound_map.bitmap_clear(bit_off + 1, alloc_bits - 1)
        chunk.bound_map.set_bit(bit_off + alloc_bits)

        chunk.free_bytes -= alloc_bits * PCPU_MIN_ALLOC_SIZE

        # update first free bit
        if bit_off == chunk.first_bit:
            chunk.first_bit = chunk.alloc_map.find_next_zero_bit(self.pcpu_chunk_map_bits(chunk), bit_off + alloc_bits)

        self.pcpu_block_update_hint_alloc(chunk, bit_off, alloc_bits)

        self.pcpu_chunk_relocate(chunk, oslot)

        return bit_off * PCPU_MIN_ALLOC_SIZE

    def pcpu_free_area(self, chunk: PcpuChunk414, off: int) -> None:  # type: ignore[override]
        """4.14 ``pcpu_free_area``: free the allocation at byte offset ``off`` (size from the boundary map)."""
        oslot = self.pcpu_chunk_slot(chunk)

        bit_off = off // PCPU_MIN_ALLOC_SIZE

        # find end index
        end = chunk.bound_map.find_next_bit(self.pcpu_chunk_map_bits(chunk), bit_off + 1)
        bits = end - bit_off
        chunk.alloc_map.bitmap_clear(bit_off, bits)

        # update metadata
        chunk.free_bytes += bits * PCPU_MIN_ALLOC_SIZE

        # update first free bit
        chunk.first_bit = min(chunk.first_bit, bit_off)

        self.pcpu_block_update_hint_free(chunk, bit_off, bits)

        self.pcpu_chunk_relocate(chunk, oslot)

    # -- chunk creation and population -------------------------------------------

    def _zalloc_chunk(self, name: str, nr_pages: int) -> PcpuChunk414:  # type: ignore[override]
        nr_bits = self.pcpu_nr_pages_to_map_bits(nr_pages)
        return PcpuChunk414.zalloc(name, nr_pages, nr_bits, nr_bits // self.PCPU_BITMAP_BLOCK_BITS)

    def pcpu_alloc_chunk(self) -> PcpuChunk414:  # type: ignore[override]
        """4.14 ``pcpu_alloc_chunk``: an empty, unpopulated chunk of ``pcpu_unit_pages`` pages."""
        chunk = self._zalloc_chunk("dynamic", self.pcpu_unit_pages)
        chunk.nr_pages = self.pcpu_unit_pages
        region_bits = self.pcpu_chunk_map_bits(chunk)
        self.pcpu_init_md_blocks(chunk)
        # init metadata
        chunk.contig_bits = region_bits
        chunk.free_bytes = chunk.nr_pages * self.PAGE_SIZE
        return chunk

    def pcpu_chunk_populated(  # type: ignore[override]
        self, chunk: PcpuChunk414, page_start: int, page_end: int, for_alloc: bool = False
    ) -> None:
        """4.14 ``pcpu_chunk_populated(chunk, page_start, page_end, for_alloc)``.

        "If this is @for_alloc, do not increment pcpu_nr_empty_pop_pages
        because it is to serve an allocation in that area."  The balance
        work (the model's Populate) passes false: the default.
        """
        nr = page_end - page_start
        chunk.populated.bitmap_set(page_start, nr)
        chunk.nr_populated += nr
        if not for_alloc:
            chunk.nr_empty_pop_pages += nr
            self.pcpu_nr_empty_pop_pages += nr

    # -- pcpu_alloc() for one chunk ----------------------------------------------

    def pcpu_alloc(self, chunk: PcpuChunk414, bit_size: int, bit_align: int, is_atomic: bool) -> int:  # type: ignore[override]
        """What 4.14's ``pcpu_alloc`` does with one chunk: the byte offset, or -1.

        The reserved chunk is tried directly; a dynamic chunk only when its
        slot is one the walk from ``pcpu_size_to_slot(size)`` visits (size in
        bytes).  Then ``pcpu_find_block_fit`` (which holds the contig check),
        ``pcpu_alloc_area``, and for a non-atomic request
        ``pcpu_chunk_populated(chunk, rs, re, true)`` on the unpopulated pages.
        """
        size = bit_size * PCPU_MIN_ALLOC_SIZE
        if chunk is not self.pcpu_reserved_chunk and chunk.slot < self.pcpu_size_to_slot(size):
            return -1

        off = self.pcpu_find_block_fit(chunk, bit_size, bit_align, is_atomic)
        if off < 0:
            return -1
        off = self.pcpu_alloc_area(chunk, bit_size, bit_align, off)
        if off < 0:
            return -1

        if not is_atomic:
            self.pcpu_alloc_populate(chunk, off, size)
        return off

    def pcpu_alloc_populate(self, chunk: PcpuChunk414, off: int, size: int) -> None:  # type: ignore[override]
        """The ``if (!is_atomic)`` block of 4.14's ``pcpu_alloc``: ``pcpu_chunk_populated(..., true)``."""
        page_start = self.PFN_DOWN(off)
        page_end = self.PFN_UP(off + size)
        for rs, re in self.pcpu_unpop_regions(chunk, page_start, page_end):
            self.pcpu_chunk_populated(chunk, rs, re, for_alloc=True)


def ALIGN_DOWN(x: int, a: int) -> int:
    """include/linux/kernel.h ``ALIGN_DOWN(x, a)`` for a power of two ``a``."""
    return x & ~(a - 1)
