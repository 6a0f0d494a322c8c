"""mm/percpu.c after PATCH 09/10 ("replace area map allocator with bitmap allocator"), ported line for line.

Each method keeps the kernel function's name, argument order, order of
updates and integer conventions; its docstring cites the patch.  The file's
globals (``pcpu_nr_empty_pop_pages``, ``pcpu_reserved_chunk``,
``pcpu_unit_pages`` ...) are attributes of the allocator object, so that a
variant is a subclass overriding only the functions its patch changes.

Units: hints, offsets and sizes are in bits (allocation units of
PCPU_MIN_ALLOC_SIZE bytes) unless a name says bytes or pages, exactly as in
the C code -- including the places where the C code mixes them.

Over 600 lines: the posting's allocator core, function by function, kept in one file so that
it reads beside the patch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pcpuverify.model.bitmap import Bitmap
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE


def ALIGN(x: int, a: int) -> int:
    """include/linux/kernel.h ``ALIGN(x, a)`` for a power of two ``a``."""
    return (x + a - 1) & ~(a - 1)


def fls(x: int) -> int:
    """``fls(int x)``: 1-based index of the most significant set bit of the 32-bit value, 0 for 0."""
    return (x & 0xFFFFFFFF).bit_length()


class FreeEdges(Protocol):
    """What a block's metadata says of its edges, in every release: the free bits it starts and ends with."""

    left_free: int
    right_free: int


def freed_area_reaches_a_free_neighbour(blocks: Sequence[FreeEdges], s_index: int, e_index: int, start: int,
                                        end: int, block_bits: int) -> bool:
    """The freed area ``[start, end)``, grown by the free bits of its first and last blocks, reaches a block edge
    beyond which the neighbouring block has free bits: the free run goes on past what the free path scanned.
    The fix, in C, of ``fixed`` (fix 5, the 2017 posting) and of ``mainline-fixed`` (fix 7)::

        (!start && s_index && (s_block - 1)->right_free)
        || (end == BLOCK_BITS && e_index + 1 < nr_blocks && (e_block + 1)->left_free)
    """
    left = start == 0 and s_index > 0 and blocks[s_index - 1].right_free > 0
    right = end == block_bits and e_index + 1 < len(blocks) and blocks[e_index + 1].left_free > 0
    return left or right


class PcpuAllocator:
    """Variant ``v1-patch09``: PATCH 09 as posted, without PATCH 10's two optimisations."""

    variant = "v1-patch09"
    ports_first_chunk = True  # pcpu_alloc_first_chunk and the first-chunk setup are ported for this class

    PCPU_SLOT_BASE_SHIFT = 3  # PATCH 09: slots computed in bits

    def __init__(self, block_bits: int, unit_pages: int) -> None:
        # PCPU_BITMAP_BLOCK_SIZE = PAGE_SIZE >> PCPU_MIN_ALLOC_SHIFT: one block per page
        self.PCPU_BITMAP_BLOCK_SIZE = block_bits
        self.PAGE_SIZE = block_bits * PCPU_MIN_ALLOC_SIZE
        self.pcpu_unit_pages = unit_pages
        self.pcpu_nr_slots = self.__pcpu_size_to_slot(self.pcpu_pages_to_bits(unit_pages)) + 2
        self.pcpu_nr_empty_pop_pages = 0
        self.pcpu_reserved_chunk: PcpuChunk | None = None
        self.pcpu_reserved_offset = 0  # bytes of the static region the first chunk's first page holds
        self.pcpu_first_chunk: PcpuChunk | None = None

    # -- page/bit/block conversions (mm/percpu-internal.h, PATCH 09) ------------

    def PFN_DOWN(self, x: int) -> int:
        return x // self.PAGE_SIZE

    def PFN_UP(self, x: int) -> int:
        return (x + self.PAGE_SIZE - 1) // self.PAGE_SIZE

    def pcpu_nr_pages_to_blocks(self, chunk: PcpuChunk) -> int:
        return chunk.nr_pages * self.PAGE_SIZE // PCPU_MIN_ALLOC_SIZE // self.PCPU_BITMAP_BLOCK_SIZE

    def pcpu_pages_to_bits(self, pages: int) -> int:
        return pages * self.PAGE_SIZE // PCPU_MIN_ALLOC_SIZE

    def pcpu_nr_pages_to_bits(self, chunk: PcpuChunk) -> int:
        return self.pcpu_pages_to_bits(chunk.nr_pages)

    def pcpu_index_alloc_map(self, chunk: PcpuChunk, index: int) -> Bitmap:
        """``chunk->alloc_map + (index * PCPU_BITMAP_BLOCK_SIZE / BITS_PER_LONG)``: block ``index``'s bits.

        The C divides into whole longs, which is exact for the kernel's
        1024-bit blocks; a scaled geometry's smaller blocks are viewed at
        their exact bit, as a kernel with that page size would need.
        """
        return chunk.alloc_map.view(index * self.PCPU_BITMAP_BLOCK_SIZE)

    def pcpu_off_to_block_index(self, off: int) -> int:
        return off // self.PCPU_BITMAP_BLOCK_SIZE

    def pcpu_off_to_block_off(self, off: int) -> int:
        return off & (self.PCPU_BITMAP_BLOCK_SIZE - 1)

    def pcpu_block_off_to_off(self, index: int, off: int) -> int:
        return index * self.PCPU_BITMAP_BLOCK_SIZE + off

    def pcpu_block_get_first_page(self, index: int) -> int:
        return self.PFN_DOWN(index * self.PCPU_BITMAP_BLOCK_SIZE * PCPU_MIN_ALLOC_SIZE)

    # -- slots ------------------------------------------------------------------

    def __pcpu_size_to_slot(self, bit_size: int) -> int:
        highbit = fls(bit_size)  # size is in bits
        return max(highbit - self.PCPU_SLOT_BASE_SHIFT + 2, 1)

    def pcpu_size_to_slot(self, bit_size: int) -> int:
        if bit_size == self.pcpu_pages_to_bits(self.pcpu_unit_pages):
            return self.pcpu_nr_slots - 1
        return self.__pcpu_size_to_slot(bit_size)

    def pcpu_chunk_slot(self, chunk: PcpuChunk) -> int:
        """PATCH 09: slot 0 for a chunk with no free bits or no contig hint."""
        if chunk.free_bits == 0 or chunk.contig_hint == 0:
            return 0
        return self.pcpu_size_to_slot(chunk.free_bits)

    def pcpu_chunk_relocate(self, chunk: PcpuChunk, oslot: int) -> None:
        """Move ``chunk`` to the ``pcpu_slot[]`` list of its current slot (not the reserved chunk)."""
        nslot = self.pcpu_chunk_slot(chunk)
        if chunk is not self.pcpu_reserved_chunk and oslot != nslot:
            chunk.slot = nslot

    # -- population (4.12 helpers; PATCH 09 adds the nr_empty_pop_pages lines) --

    def pcpu_next_unpop(self, chunk: PcpuChunk, rs: int, end: int) -> tuple[int, int]:
        rs = chunk.populated.find_next_zero_bit(end, rs)
        re = chunk.populated.find_next_bit(end, rs + 1)
        return rs, re

    def pcpu_next_pop(self, chunk: PcpuChunk, rs: int, end: int) -> tuple[int, int]:
        rs = chunk.populated.find_next_bit(end, rs)
        re = chunk.populated.find_next_zero_bit(end, rs + 1)
        return rs, re

    def pcpu_unpop_regions(self, chunk: PcpuChunk, start: int, end: int) -> list[tuple[int, int]]:
        """``pcpu_for_each_unpop_region(chunk, rs, re, start, end)`` as a list."""
        regions = []
        rs, re = self.pcpu_next_unpop(chunk, start, end)
        while rs < re:
            regions.append((rs, re))
            rs, re = self.pcpu_next_unpop(chunk, re + 1, end)
        return regions

    def pcpu_pop_regions(self, chunk: PcpuChunk, start: int, end: int) -> list[tuple[int, int]]:
        """``pcpu_for_each_pop_region(chunk, rs, re, start, end)`` as a list."""
        regions = []
        rs, re = self.pcpu_next_pop(chunk, start, end)
        while rs < re:
            regions.append((rs, re))
            rs, re = self.pcpu_next_pop(chunk, re + 1, end)
        return regions

    def pcpu_chunk_populated(self, chunk: PcpuChunk, page_start: int, page_end: int) -> None:
        """4.12 ``pcpu_chunk_populated`` plus PATCH 09's ``chunk->nr_empty_pop_pages += nr``."""
        nr = page_end - page_start
        chunk.populated.bitmap_set(page_start, nr)
        chunk.nr_populated += nr
        chunk.nr_empty_pop_pages += nr
        self.pcpu_nr_empty_pop_pages += nr

    def pcpu_chunk_depopulated(self, chunk: PcpuChunk, page_start: int, page_end: int) -> None:
        """4.12 ``pcpu_chunk_depopulated`` plus PATCH 09's ``chunk->nr_empty_pop_pages -= nr``."""
        nr = page_end - page_start
        chunk.populated.bitmap_clear(page_start, nr)
        chunk.nr_populated -= nr
        chunk.nr_empty_pop_pages -= nr
        self.pcpu_nr_empty_pop_pages -= nr

    def pcpu_cnt_pop_pages(self, chunk: PcpuChunk, start: int, end: int) -> int:
        """PATCH 09: populated pages in ``[start, end)``."""
        return chunk.populated.bitmap_weight(end) - chunk.populated.bitmap_weight(start)

    # -- hints (PATCH 09) -------------------------------------------------------

    def pcpu_chunk_update_hint(self, chunk: PcpuChunk) -> None:
        """PATCH 09 ``pcpu_chunk_update_hint``: aggregate block hints into the chunk's.

        Updates ``chunk->contig_hint``, ``chunk->contig_hint_start`` and
        ``nr_empty_pop_pages`` (chunk and global, the global only for a chunk
        other than the reserved one).
        """
        B = self.PCPU_BITMAP_BLOCK_SIZE
        is_page_empty = True
        chunk.contig_hint = cur_contig = 0
        off = nr_empty_pop_pages = 0
        l_pop_off = self.pcpu_block_get_first_page(chunk.first_free_block)

        for i in range(chunk.first_free_block, self.pcpu_nr_pages_to_blocks(chunk)):
            block = chunk.md_blocks[i]
            # the first page of each block is tracked for nr_empty_pop_pages
            pop_off = self.pcpu_block_get_first_page(i)

            if pop_off > l_pop_off:
                if is_page_empty:
                    nr_empty_pop_pages += self.pcpu_cnt_pop_pages(chunk, l_pop_off, pop_off)
                l_pop_off = pop_off
                is_page_empty = True
            if block.contig_hint != B:
                is_page_empty = False

            # continue from prev block adding to the cur_contig hint
            if cur_contig:
                cur_contig += block.left_free
                if block.left_free == B:
                    continue
                elif cur_contig > chunk.contig_hint:
                    chunk.contig_hint = cur_contig
                    chunk.contig_hint_start = off
                cur_contig = 0
            # check if the block->contig_hint is larger
            if block.contig_hint > chunk.contig_hint:
                chunk.contig_hint = block.contig_hint
                chunk.contig_hint_start = self.pcpu_block_off_to_off(i, block.contig_hint_start)
            # let the next iteration catch the right_free
            cur_contig = block.right_free
            off = (i + 1) * B - block.right_free

        # catch last iteration if the last block ends with free space
        if cur_contig > chunk.contig_hint:
            chunk.contig_hint = cur_contig
            chunk.contig_hint_start = off

        if is_page_empty:
            nr_empty_pop_pages += self.pcpu_cnt_pop_pages(chunk, l_pop_off, chunk.nr_pages)
        if chunk is not self.pcpu_reserved_chunk:
            self.pcpu_nr_empty_pop_pages += nr_empty_pop_pages - chunk.nr_empty_pop_pages
        chunk.nr_empty_pop_pages = nr_empty_pop_pages

    def pcpu_block_refresh_hint(self, chunk: PcpuChunk, index: int) -> None:
        """PATCH 09: full scan of block ``index`` from its ``first_free`` to recompute its hints."""
        B = self.PCPU_BITMAP_BLOCK_SIZE
        alloc_map = self.pcpu_index_alloc_map(chunk, index)
        block = chunk.md_blocks[index]
        is_left_free = is_right_free = False

        block.contig_hint = 0
        start = end = block.first_free
        while start < B:
            start = alloc_map.find_next_zero_bit(B, start)
            if start >= B:
                break
            # returns PCPU_BITMAP_BLOCK_SIZE if no next bit is found
            end = alloc_map.find_next_bit(B, start)
            contig = end - start
            if start == 0:
                block.left_free = contig
                is_left_free = True
            if end == B:
                block.right_free = contig
                is_right_free = True
            if block.contig_hint < contig:
                block.contig_hint = contig
                block.contig_hint_start = start
            start = end

        # clear left/right free hints
        if not is_left_free:
            block.left_free = 0
        if not is_right_free:
            block.right_free = 0

    def _block_range(self, bit_off: int, bit_size: int) -> tuple[int, int, int, int]:
        """The per-block offsets both hint updaters compute first (PATCH 09).

        If the end is the beginning of the next block, it is set to the end
        of the previous block as the last bit is exclusive.
        """
        s_index = self.pcpu_off_to_block_index(bit_off)
        e_index = self.pcpu_off_to_block_index(bit_off + bit_size)
        s_off = self.pcpu_off_to_block_off(bit_off)
        e_off = self.pcpu_off_to_block_off(bit_off + bit_size)
        if e_off == 0:
            e_off = self.PCPU_BITMAP_BLOCK_SIZE
            e_index -= 1
        return s_index, e_index, s_off, e_off

    def pcpu_block_update_hint_alloc(self, chunk: PcpuChunk, bit_off: int, bit_size: int) -> bool:
        """PATCH 09: update block hints after allocating ``[bit_off, bit_off + bit_size)``.

        Returns whether the chunk's metadata must be refreshed: only if the
        allocation starts inside the chunk's contig hint.
        """
        B = self.PCPU_BITMAP_BLOCK_SIZE
        update_chunk = False
        s_index, e_index, s_off, e_off = self._block_range(bit_off, bit_size)
        s_block = chunk.md_blocks[s_index]
        e_block = chunk.md_blocks[e_index]

        # Update s_block.
        if s_off == s_block.first_free:
            s_block.first_free = self.pcpu_index_alloc_map(chunk, s_index).find_next_zero_bit(
                B, s_off + bit_size
            )

        if s_block.contig_hint_start <= s_off < s_block.contig_hint_start + s_block.contig_hint:
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
            e_block.first_free = self.pcpu_index_alloc_map(chunk, e_index).find_next_zero_bit(B, e_off)
            self.pcpu_block_refresh_hint(chunk, e_index)

        # update in-between md_blocks
        for i in range(s_index + 1, e_index):
            block = chunk.md_blocks[i]
            block.contig_hint = 0
            block.left_free = 0
            block.right_free = 0

        # a full chunk scan is required only if the global contig_hint is broken
        if chunk.contig_hint_start <= bit_off < chunk.contig_hint_start + chunk.contig_hint:
            update_chunk = True

        return update_chunk

    def pcpu_block_update_hint_free(self, chunk: PcpuChunk, bit_off: int, bit_size: int) -> bool:
        """PATCH 09: update block hints after freeing ``[bit_off, bit_off + bit_size)``.

        Returns whether the chunk's metadata must be refreshed: when an entire
        block becomes free or the free spans blocks.  Otherwise the chunk's
        hint is raised only to the start block's new contig hint.
        """
        B = self.PCPU_BITMAP_BLOCK_SIZE
        update_chunk = False
        s_index, e_index, s_off, e_off = self._block_range(bit_off, bit_size)
        s_block = chunk.md_blocks[s_index]
        e_block = chunk.md_blocks[e_index]

        # Find the free region's start and end within their blocks, skipping
        # the scan when the freed area abuts the block's contig hint.
        start = s_off
        if s_off == s_block.contig_hint + s_block.contig_hint_start:
            start = s_block.contig_hint_start
        else:
            l_bit = self.pcpu_index_alloc_map(chunk, s_index).find_last_bit(start)
            start = 0 if start == l_bit else l_bit + 1

        end = e_off
        if e_off == e_block.contig_hint_start:
            end = e_block.contig_hint_start + e_block.contig_hint
        else:
            end = self.pcpu_index_alloc_map(chunk, e_index).find_next_bit(B, end)

        # freeing in the same block
        if s_index == e_index:
            contig = end - start

            if start == 0:
                s_block.left_free = contig

            if end == B:
                s_block.right_free = contig

            s_block.first_free = min(s_block.first_free, start)
            if contig > s_block.contig_hint:
                s_block.contig_hint = contig
                s_block.contig_hint_start = start

        else:
            # Freeing across md_blocks: a block freed from its start is reset.
            if start == 0:
                s_index -= 1
            else:
                s_block.first_free = min(s_block.first_free, start)
                contig = B - start
                s_block.right_free = contig
                if contig > s_block.contig_hint:
                    s_block.contig_hint = contig
                    s_block.contig_hint_start = start
            # If end is the entire e_block, just reset the block as well.
            if end == B:
                e_index += 1
            else:
                # the hint must only be on the left side
                e_block.first_free = 0
                e_block.left_free = end
                if end > e_block.contig_hint:
                    e_block.contig_hint = end
                    e_block.contig_hint_start = 0

            # reset md_blocks in the middle
            for i in range(s_index + 1, e_index):
                block = chunk.md_blocks[i]
                block.first_free = 0
                block.contig_hint_start = 0
                block.contig_hint = B
                block.left_free = B
                block.right_free = B

        if self.pcpu_free_refreshes_chunk(chunk, s_index, e_index, start, end):
            update_chunk = True
        elif s_block.contig_hint > chunk.contig_hint:
            # check if block contig_hint is bigger
            chunk.contig_hint = s_block.contig_hint
            chunk.contig_hint_start = self.pcpu_block_off_to_off(s_index, s_block.contig_hint_start)

        return update_chunk

    def pcpu_free_refreshes_chunk(self, chunk: PcpuChunk, s_index: int, e_index: int, start: int, end: int) -> bool:
        """PATCH 09, the test closing ``pcpu_block_update_hint_free``: refresh the chunk's metadata?

        ``[start, end)`` is the freed area grown by the free bits of its own
        blocks.  PATCH 09 refreshes "when the free makes a page free" or
        spans blocks; otherwise the chunk hint is raised to the block's hint.
        """
        return (start == 0 and end == self.PCPU_BITMAP_BLOCK_SIZE) or s_index != e_index

    # -- allocation path (PATCH 09) ---------------------------------------------

    def pcpu_is_populated(
        self, chunk: PcpuChunk, index: int, block_off: int, bit_size: int
    ) -> tuple[bool, int | None]:
        """PATCH 09 ``pcpu_is_populated``: are the pages backing the region populated?

        Returns ``(populated, next_index)``; ``next_index`` (C's out
        parameter) is only written when the region is not populated.  As
        posted, ``off`` is a bit offset that ``PFN_DOWN`` treats as bytes and
        ``e_off`` adds a byte size to it; the port keeps that.
        """
        off = self.pcpu_block_off_to_off(index, block_off)
        e_off = off + bit_size * PCPU_MIN_ALLOC_SIZE

        page_start = self.PFN_DOWN(off)
        page_end = self.PFN_UP(e_off)

        rs = page_start
        rs, re = self.pcpu_next_unpop(chunk, rs, self.PFN_UP(e_off))
        if rs >= page_end:
            return True, None
        return False, re * self.PAGE_SIZE // self.PCPU_BITMAP_BLOCK_SIZE

    def pcpu_find_block_fit(self, chunk: PcpuChunk, bit_size: int, align: int, pop_only: bool) -> int:
        """PATCH 09 ``pcpu_find_block_fit``: the bit offset to start searching, or -1.

        The C loop jumps into its last branch with ``goto check_populated``;
        here each branch sets ``end_off`` and falls through to one check.
        """
        B = self.PCPU_BITMAP_BLOCK_SIZE
        nr_blocks = self.pcpu_nr_pages_to_blocks(chunk)
        cur_free = block_off = 0
        s_index = chunk.first_free_block
        i = chunk.first_free_block
        while i < nr_blocks:
            block = chunk.md_blocks[i]

            # continue from prev block
            cur_free += block.left_free
            if cur_free >= bit_size:
                end_off: int | None = bit_size
            elif block.left_free == B:
                i += 1
                continue
            else:
                # Can this block hold this alloc?
                cur_free = 0
                s_index = i
                block_off = ALIGN(block.contig_hint_start, align)
                block_off -= block.contig_hint_start
                if block.contig_hint >= block_off + bit_size:
                    block_off = block.first_free
                    end_off = block.contig_hint_start - block_off + bit_size
                else:
                    # check right
                    block_off = ALIGN(B - block.right_free, align)
                    # reset to start looking in the next block
                    if block_off >= B:
                        s_index += 1
                        cur_free = block_off = 0
                        i += 1
                        continue
                    cur_free = B - block_off
                    end_off = bit_size if cur_free >= bit_size else None

            if end_off is not None:  # check_populated:
                if not pop_only:
                    break
                populated, next_index = self.pcpu_is_populated(chunk, s_index, block_off, end_off)
                if populated:
                    break
                assert next_index is not None
                i = next_index - 1
                s_index = next_index
                cur_free = block_off = 0
            i += 1

        # nothing found
        if i == nr_blocks:
            return -1

        return s_index * B + block_off

    def pcpu_alloc_area_search(self, chunk: PcpuChunk, bit_size: int, align_mask: int, start: int) -> int:
        """The search step of ``pcpu_alloc_area``: the offset found, or -1.

        PATCH 09 searches the whole bitmap from ``start``.
        """
        nr_bits = self.pcpu_nr_pages_to_bits(chunk)
        bit_off = chunk.alloc_map.bitmap_find_next_zero_area(nr_bits, start, bit_size, align_mask)
        if bit_off >= nr_bits:
            return -1
        return bit_off

    def pcpu_alloc_area(self, chunk: PcpuChunk, bit_size: int, align: int, start: int) -> int:
        """PATCH 09 ``pcpu_alloc_area``: allocate from ``start``; the byte offset, or -1."""
        align_mask = (align - 1) if align else 0

        oslot = self.pcpu_chunk_slot(chunk)

        # search to find fit
        bit_off = self.pcpu_alloc_area_search(chunk, bit_size, align_mask, start)
        if bit_off < 0:
            return -1

        # update alloc map
        chunk.alloc_map.bitmap_set(bit_off, bit_size)
        # update boundary map
        chunk.bound_map.set_bit(bit_off)
        chunk.bound_map.bitmap_clear(bit_off + 1, bit_size - 1)
        chunk.bound_map.set_bit(bit_off + bit_size)

        chunk.free_bits -= bit_size

        if self.pcpu_block_update_hint_alloc(chunk, bit_off, bit_size):
            self.pcpu_chunk_update_hint(chunk)

        # update chunk first_free
        i = chunk.first_free_block
        while i < self.pcpu_nr_pages_to_blocks(chunk):
            if chunk.md_blocks[i].contig_hint != 0:
                break
            i += 1
        chunk.first_free_block = i

        self.pcpu_chunk_relocate(chunk, oslot)

        return bit_off * PCPU_MIN_ALLOC_SIZE

    def pcpu_free_area(self, chunk: PcpuChunk, off: int) -> None:
        """PATCH 09 ``pcpu_free_area``: free the allocation at byte offset ``off``.

        The size comes from the boundary map; block hints are updated and a
        chunk refresh happens only when the block updater asks for it.
        """
        oslot = self.pcpu_chunk_slot(chunk)

        bit_off = off // PCPU_MIN_ALLOC_SIZE

        # find end index
        end = chunk.bound_map.find_next_bit(self.pcpu_nr_pages_to_bits(chunk), bit_off + 1)
        bit_size = end - bit_off

        chunk.alloc_map.bitmap_clear(bit_off, bit_size)

        chunk.free_bits += bit_size

        # update first_free
        index = self.pcpu_off_to_block_index(bit_off)
        block = chunk.md_blocks[index]
        block.first_free = min(block.first_free, bit_off % self.PCPU_BITMAP_BLOCK_SIZE)

        chunk.first_free_block = min(chunk.first_free_block, index)

        if self.pcpu_block_update_hint_free(chunk, bit_off, bit_size):
            self.pcpu_chunk_update_hint(chunk)

        self.pcpu_chunk_relocate(chunk, oslot)

    # -- chunk creation (PATCH 09) ----------------------------------------------

    def pcpu_init_md_blocks(self, chunk: PcpuChunk) -> None:
        """PATCH 09: every block starts entirely free (``first_free`` stays 0 from zalloc)."""
        B = self.PCPU_BITMAP_BLOCK_SIZE
        for md_block in chunk.md_blocks:
            md_block.contig_hint = B
            md_block.left_free = B
            md_block.right_free = B

    def _zalloc_chunk(self, name: str, nr_pages: int) -> PcpuChunk:
        nr_bits = self.pcpu_pages_to_bits(nr_pages)
        return PcpuChunk.zalloc(name, nr_pages, nr_bits, nr_bits // self.PCPU_BITMAP_BLOCK_SIZE)

    def pcpu_alloc_chunk(self) -> PcpuChunk:
        """PATCH 09 ``pcpu_alloc_chunk``: an empty, unpopulated chunk of ``pcpu_unit_pages`` pages."""
        chunk = self._zalloc_chunk("dynamic", self.pcpu_unit_pages)
        chunk.has_reserved = False
        chunk.nr_pages = self.pcpu_unit_pages
        map_size_bits = self.pcpu_nr_pages_to_bits(chunk)
        self.pcpu_init_md_blocks(chunk)
        # init metadata
        chunk.contig_hint = chunk.free_bits = map_size_bits
        return chunk

    def pcpu_alloc_first_chunk(self, name: str, chunk_pages: int) -> PcpuChunk:
        """PATCH 09 ``pcpu_alloc_first_chunk``: an immutable, fully populated chunk."""
        chunk = self._zalloc_chunk(name, chunk_pages)
        chunk.has_reserved = False
        chunk.immutable = True
        chunk.nr_pages = chunk_pages
        self.pcpu_init_md_blocks(chunk)
        # fill page populated map - the first chunk is fully populated
        chunk.populated.bitmap_fill(chunk_pages)
        chunk.nr_populated = chunk.nr_empty_pop_pages = chunk_pages
        return chunk

    # -- pcpu_alloc() for one chunk ----------------------------------------------

    def pcpu_alloc(self, chunk: PcpuChunk, bit_size: int, bit_align: int, is_atomic: bool) -> int:
        """What ``pcpu_alloc`` does with one chunk: the byte offset, or -1 if the chunk can't serve.

        For a dynamic chunk the slot walk only looks at chunks on a slot of
        at least ``pcpu_size_to_slot(bit_size)`` and skips a chunk whose
        ``contig_hint`` is smaller than the request; the reserved chunk is
        tried directly.  Then ``pcpu_find_block_fit``, ``pcpu_alloc_area`` and,
        for a non-atomic request, population of the area's unpopulated pages
        with ``pcpu_chunk_populated`` (``pcpu_populate_chunk`` cannot fail here).
        """
        if chunk is not self.pcpu_reserved_chunk:
            if chunk.slot < self.pcpu_size_to_slot(bit_size):
                return -1
            if bit_size > chunk.contig_hint:
                return -1

        off = self.pcpu_find_block_fit(chunk, bit_size, bit_align, is_atomic)
        if off < 0:
            return -1
        off = self.pcpu_alloc_area(chunk, bit_size, bit_align, off)
        if off < 0:
            return -1

        if not is_atomic:
            self.pcpu_alloc_populate(chunk, off, bit_size * PCPU_MIN_ALLOC_SIZE)
        return off

    def pcpu_alloc_populate(self, chunk: PcpuChunk, off: int, size: int) -> None:
        """The ``if (!is_atomic)`` block of ``pcpu_alloc``: populate the area's unpopulated pages.

        A function of its own only so that a variant can change these lines alone.
        """
        page_start = self.PFN_DOWN(off)
        page_end = self.PFN_UP(off + size)
        for rs, re in self.pcpu_unpop_regions(chunk, page_start, page_end):
            self.pcpu_chunk_populated(chunk, rs, re)

    def pcpu_begin_fill_bits(self, pcpu_reserved_offset: int) -> int:
        """``begin_fill_bits = pcpu_reserved_offset / PCPU_MIN_ALLOC_SIZE`` (PATCH 09, pcpu_setup_first_chunk).

        A function of its own only so that a variant can change this line alone.
        """
        return pcpu_reserved_offset // PCPU_MIN_ALLOC_SIZE
