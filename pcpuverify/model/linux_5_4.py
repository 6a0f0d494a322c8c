"""mm/percpu.c of Linux 5.4 (v5.4.286): the scan_hint allocator of the 5.2 series, ported line for line.

The 5.2 series (Dennis Zhou, "percpu: pcpu_block_md based hints") gives
each block a ``scan_hint`` and ``nr_bits``, makes the chunk's hints a
``pcpu_block_md`` of its own (``chunk_md``), and counts empty pages from the
block hints instead of the chunk refresh.  The variant derives from
``linux-4.14`` and overrides what the series changed; inherited unchanged
are the page/bit/block conversions, ``pcpu_next_md_free_region``,
``pcpu_next_fit_region`` (whose start is ``pcpu_next_hint`` here) and
``pcpu_is_populated``.  Units are the C code's: bits unless a name says
bytes or pages.

Over 600 lines: one release's allocator core, function by function, kept in one file so that
it reads beside that release's mm/percpu.c.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pcpuverify.model.bitmap import Bitmap
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE
from pcpuverify.model.linux_4_14 import Linux414, ffs0, pcpu_for_each_unpop_region
from pcpuverify.model.percpu import ALIGN
from pcpuverify.model.release_chunk import ReleaseChunk
from pcpuverify.model.state import flat_dict


@dataclass
class PcpuBlockMd:
    """5.4 ``struct pcpu_block_md`` (mm/percpu-internal.h); all fields in bits.

    "The scan hint is the largest known contiguous area before the contig
    hint.  It is not necessarily the actual largest contig hint though."
    """

    scan_hint: int = 0  # scan hint for block
    scan_hint_start: int = 0  # block relative starting position of the scan hint
    contig_hint: int = 0  # contig hint for block
    contig_hint_start: int = 0  # block relative starting position of the contig hint
    left_free: int = 0  # size of free space along the left side of the block
    right_free: int = 0  # size of free space along the right side of the block
    first_free: int = 0  # block position of first free
    nr_bits: int = 0  # total bits responsible for


@dataclass
class PcpuChunk54(ReleaseChunk):
    """5.4 ``struct pcpu_chunk``: ``chunk_md`` in place of the chunk's own hints and ``first_bit``."""

    block_type: ClassVar[type] = PcpuBlockMd

    chunk_md: PcpuBlockMd = field(default_factory=PcpuBlockMd)

    def dump(self) -> dict[str, object]:
        """The state dump with 5.4's field names: ``chunk_md`` is a dict of the block fields."""
        return self.dump_with({"chunk_md": flat_dict(self.chunk_md)})


def pcpu_region_overlap(a: int, b: int, x: int, y: int) -> bool:
    """``pcpu_region_overlap``: does ``[a, b)`` overlap ``[x, y)``?

    "percpu: introduce helper to determine if two regions overlap" (5.2).
    """
    return (a < y) and (x < b)


class Linux54(Linux414):
    """Variant ``linux-5.4``: mm/percpu.c of v5.4.286, the scan_hint allocator.

    Overrides of ``linux-4.14``, by 5.2 commit:
    "percpu: introduce helper to determine if two regions overlap" (the
    alloc path's hint tests); "percpu: manage chunks based on contig_bits
    instead of free_bytes" (``pcpu_chunk_slot``); "percpu: relegate chunks
    unusable when failing small allocations" (``pcpu_chunk_move`` to slot 0
    in ``pcpu_alloc``); "percpu: set PCPU_BITMAP_BLOCK_SIZE to PAGE_SIZE" and
    the empty-page accounting by block (``pcpu_update_empty_pages``); "percpu:
    add block level scan_hint", "percpu: remember largest area skipped during
    allocation" (``pcpu_find_zero_area``, ``pcpu_block_update_scan``), "percpu:
    use block scan_hint to only scan forward" (``pcpu_next_hint``), "percpu:
    make pcpu_block_md generic" (``nr_bits``), "percpu: convert chunk hints to
    be based on pcpu_block_md" (``chunk_md``), "percpu: use chunk scan_hint to
    skip some scanning" (``pcpu_chunk_refresh_hint(chunk, full_scan)``);
    "percpu: do not search past bitmap when allocating an area" (the
    ``min_t`` in ``pcpu_alloc_area``); "percpu: update free path with correct
    new free region" (the free path's chunk update).  ``FirstChunkInit`` is
    not ported for this variant yet.
    """

    variant = "linux-5.4"
    chunk_type: type[PcpuChunk54] = PcpuChunk54

    PCPU_SLOT_FAIL_THRESHOLD = 3

    def __init__(self, block_bits: int, unit_pages: int) -> None:
        super().__init__(block_bits, unit_pages)
        self.pcpu_nr_populated = 0  # 5.4: the populated pages of all chunks

    # -- slots ("percpu: manage chunks based on contig_bits instead of free_bytes") ----

    def pcpu_chunk_slot(self, chunk: PcpuChunk54) -> int:  # type: ignore[override]
        chunk_md = chunk.chunk_md
        if chunk.free_bytes < PCPU_MIN_ALLOC_SIZE or chunk_md.contig_hint == 0:
            return 0
        return self.pcpu_size_to_slot(chunk_md.contig_hint * PCPU_MIN_ALLOC_SIZE)

    def _pcpu_chunk_move(self, chunk: PcpuChunk54, slot: int, move_front: bool) -> None:
        """``__pcpu_chunk_move``: to the front or the tail of ``pcpu_slot[slot]`` (one chunk: the slot only).

        One underscore: Python mangles two inside a class.
        """
        if chunk is not self.pcpu_reserved_chunk:
            chunk.slot = slot

    def pcpu_chunk_move(self, chunk: PcpuChunk54, slot: int) -> None:
        self._pcpu_chunk_move(chunk, slot, True)

    def pcpu_chunk_relocate(self, chunk: PcpuChunk54, oslot: int) -> None:  # type: ignore[override]
        nslot = self.pcpu_chunk_slot(chunk)
        if oslot != nslot:
            self._pcpu_chunk_move(chunk, nslot, oslot < nslot)

    # -- empty pages and hints ----------------------------------------------------

    def pcpu_update_empty_pages(self, chunk: PcpuChunk54, nr: int) -> None:
        """``pcpu_update_empty_pages``: "based on the premise a md_block covers a page"."""
        chunk.nr_empty_pop_pages += nr
        if chunk is not self.pcpu_reserved_chunk:
            self.pcpu_nr_empty_pop_pages += nr

    def pcpu_next_hint(self, block: PcpuBlockMd, alloc_bits: int) -> int:
        """``pcpu_next_hint`` ("percpu: use block scan_hint to only scan forward"): where to start scanning.

        Past the scan_hint when it exists, lies before the contig_hint, and
        is too small for the request; else ``first_free``.
        """
        if block.scan_hint and block.contig_hint_start > block.scan_hint_start and alloc_bits > block.scan_hint:
            return block.scan_hint_start + block.scan_hint
        return block.first_free

    def pcpu_next_fit_start(self, block: PcpuBlockMd, alloc_bits: int) -> int:  # type: ignore[override]
        """5.2: ``int start = pcpu_next_hint(block, alloc_bits);`` in ``pcpu_next_fit_region``."""
        return self.pcpu_next_hint(block, alloc_bits)

    def pcpu_block_update(self, block: PcpuBlockMd, start: int, end: int) -> None:  # type: ignore[override]
        """5.4 ``pcpu_block_update``: a block (or ``chunk_md``) given the whole free area ``[start, end)``.

        "percpu: add block level scan_hint": the old contig hint is promoted
        to scan_hint, holding "scan_hint_start > contig_hint_start iff
        scan_hint == contig_hint"; "percpu: make pcpu_block_md generic":
        ``end == block->nr_bits``.
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
                elif start < block.scan_hint_start:
                    # old contig_hint == scan_hint, but the new contig is larger:
                    # hold the invariant scan_hint_start < contig_hint_start
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
            elif start > block.scan_hint_start or block.contig_hint > block.scan_hint:
                # contig == contig_hint: a farther or larger scan_hint
                block.scan_hint_start = start
                block.scan_hint = contig
        else:
            # smaller than the contig_hint: the scan_hint only if larger or equal and farther
            if start < block.contig_hint_start and (
                contig > block.scan_hint or (contig == block.scan_hint and start > block.scan_hint_start)
            ):
                block.scan_hint_start = start
                block.scan_hint = contig

    def pcpu_block_update_scan(self, chunk: PcpuChunk54, bit_off: int, bits: int) -> None:
        """``pcpu_block_update_scan`` ("percpu: remember largest area skipped during allocation").

        A free area the search skipped updates its block, after scanning
        backwards for free bits lost to alignment.
        """
        s_off = self.pcpu_off_to_block_off(bit_off)
        e_off = s_off + bits

        if e_off > self.PCPU_BITMAP_BLOCK_BITS:
            return

        s_index = self.pcpu_off_to_block_index(bit_off)
        block = chunk.md_blocks[s_index]

        # scan backwards in case of alignment skipping free bits
        l_bit = self.pcpu_index_alloc_map(chunk, s_index).find_last_bit(s_off)
        s_off = 0 if s_off == l_bit else l_bit + 1

        self.pcpu_block_update(block, s_off, e_off)

    def pcpu_chunk_refresh_hint(self, chunk: PcpuChunk54, full_scan: bool) -> None:  # type: ignore[override]
        """5.4 ``pcpu_chunk_refresh_hint(chunk, full_scan)`` ("percpu: use chunk scan_hint to skip some scanning").

        Without a full scan the chunk's scan_hint is promoted to contig_hint
        and the blocks are aggregated from its end; else from ``first_free``.
        """
        chunk_md = chunk.chunk_md

        # promote scan_hint to contig_hint
        if not full_scan and chunk_md.scan_hint:
            bit_off = chunk_md.scan_hint_start + chunk_md.scan_hint
            chunk_md.contig_hint_start = chunk_md.scan_hint_start
            chunk_md.contig_hint = chunk_md.scan_hint
            chunk_md.scan_hint = 0
        else:
            bit_off = chunk_md.first_free
            chunk_md.contig_hint = 0

        for region_off, bits in self.pcpu_md_free_regions(chunk, bit_off):
            self.pcpu_block_update(chunk_md, region_off, region_off + bits)

    def pcpu_block_refresh_hint(self, chunk: PcpuChunk54, index: int) -> None:  # type: ignore[override]
        """5.4 ``pcpu_block_refresh_hint``: rescan block ``index`` forward from its scan_hint, else ``first_free``."""
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

        block.right_free = 0

        # iterate over free areas and update the contig hints
        for rs, re in pcpu_for_each_unpop_region(alloc_map, start, self.PCPU_BITMAP_BLOCK_BITS):
            self.pcpu_block_update(block, rs, re)

    def pcpu_block_update_hint_alloc(self, chunk: PcpuChunk54, bit_off: int, bits: int) -> None:  # type: ignore[override]
        """5.4 ``pcpu_block_update_hint_alloc``: hints after allocating ``[bit_off, bit_off + bits)``.

        A hint the area overlaps (``pcpu_region_overlap``) is dropped
        (scan_hint) or rescanned (contig_hint); a block whose contig_hint was
        the whole block counts as one empty page less; the chunk is refreshed
        without a full scan iff the area overlaps ``chunk_md``'s contig_hint.
        """
        B = self.PCPU_BITMAP_BLOCK_BITS
        chunk_md = chunk.chunk_md
        nr_empty_pages = 0

        # per block offsets on an inclusive range: e_index is the last block of the area
        s_index = self.pcpu_off_to_block_index(bit_off)
        e_index = self.pcpu_off_to_block_index(bit_off + bits - 1)
        s_off = self.pcpu_off_to_block_off(bit_off)
        e_off = self.pcpu_off_to_block_off(bit_off + bits - 1) + 1

        s_block = chunk.md_blocks[s_index]
        e_block = chunk.md_blocks[e_index]

        # Update s_block.
        if s_block.contig_hint == B:
            nr_empty_pages += 1

        if s_off == s_block.first_free:
            s_block.first_free = self.pcpu_index_alloc_map(chunk, s_index).find_next_zero_bit(B, s_off + bits)

        if pcpu_region_overlap(s_block.scan_hint_start, s_block.scan_hint_start + s_block.scan_hint,
                               s_off, s_off + bits):
            s_block.scan_hint = 0

        if pcpu_region_overlap(s_block.contig_hint_start, s_block.contig_hint_start + s_block.contig_hint,
                               s_off, s_off + bits):
            # block contig hint is broken - scan to fix it
            if not s_off:
                s_block.left_free = 0
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
            if e_block.contig_hint == B:
                nr_empty_pages += 1

            # the allocation across blocks ends along the left part of e_block
            e_block.first_free = self.pcpu_index_alloc_map(chunk, e_index).find_next_zero_bit(B, e_off)

            e_end = e_index  # C: e_block, a pointer the in-between loop stops at
            if e_off == B:
                # reset the block
                e_end += 1
            else:
                if e_off > e_block.scan_hint_start:
                    e_block.scan_hint = 0

                e_block.left_free = 0
                if e_off > e_block.contig_hint_start:
                    # contig hint is broken - scan to fix it
                    self.pcpu_block_refresh_hint(chunk, e_index)
                else:
                    e_block.right_free = min(e_block.right_free, B - e_off)

            # update in-between md_blocks
            nr_empty_pages += e_index - s_index - 1
            for i in range(s_index + 1, e_end):
                block = chunk.md_blocks[i]
                block.scan_hint = 0
                block.contig_hint = 0
                block.left_free = 0
                block.right_free = 0

        if nr_empty_pages:
            self.pcpu_update_empty_pages(chunk, -nr_empty_pages)

        if pcpu_region_overlap(chunk_md.scan_hint_start, chunk_md.scan_hint_start + chunk_md.scan_hint,
                               bit_off, bit_off + bits):
            chunk_md.scan_hint = 0

        # a full chunk scan is required only if the chunk contig hint is broken
        if pcpu_region_overlap(chunk_md.contig_hint_start, chunk_md.contig_hint_start + chunk_md.contig_hint,
                               bit_off, bit_off + bits):
            self.pcpu_alloc_refresh_chunk(chunk)

    def pcpu_alloc_refresh_chunk(self, chunk: PcpuChunk54) -> None:
        """``pcpu_block_update_hint_alloc``'s refresh when an allocation breaks the chunk's contig hint: 5.4 to
        7.1.3 pass ``full_scan`` false, promoting ``chunk_md``'s scan_hint ("percpu: use chunk scan_hint to skip
        some scanning")."""
        self.pcpu_chunk_refresh_hint(chunk, False)

    def pcpu_block_update_hint_free(self, chunk: PcpuChunk54, bit_off: int, bits: int) -> None:  # type: ignore[override]
        """5.4 ``pcpu_block_update_hint_free``: hints after freeing ``[bit_off, bit_off + bits)``.

        "chunk_md->contig_hint may be off by up to a page, but it will never
        be more than the available space.  If the contig hint is contained in
        one block, it will be accurate."  The chunk is refreshed with a full
        scan when the free makes a block free or spans blocks, else updated
        with the free area ("percpu: update free path with correct new free
        region").
        """
        B = self.PCPU_BITMAP_BLOCK_BITS
        nr_empty_pages = 0

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
        if not start and e_off == B:
            nr_empty_pages += 1
        self.pcpu_block_update(s_block, start, e_off)

        # freeing in the same block
        if s_index != e_index:
            # update e_block
            if end == B:
                nr_empty_pages += 1
            self.pcpu_block_update(e_block, 0, end)

            # reset md_blocks in the middle
            nr_empty_pages += e_index - s_index - 1
            for i in range(s_index + 1, e_index):
                block = chunk.md_blocks[i]
                block.first_free = 0
                block.scan_hint = 0
                block.contig_hint_start = 0
                block.contig_hint = B
                block.left_free = B
                block.right_free = B

        if nr_empty_pages:
            self.pcpu_update_empty_pages(chunk, nr_empty_pages)

        # refresh when the free makes a block free or spans blocks
        if self.pcpu_free_refreshes_chunk(chunk, s_index, e_index, start, end):
            self.pcpu_chunk_refresh_hint(chunk, True)
        else:
            self.pcpu_free_update_chunk_md(chunk, s_index, start, end)

    def pcpu_free_refreshes_chunk(self, chunk: PcpuChunk54, s_index: int, e_index: int, start: int, end: int) -> bool:
        """The condition of ``pcpu_block_update_hint_free``'s full ``chunk_md`` refresh, a method of its own (as
        the 2017 posting's in ``percpu.py``) so that ``mainline-fixed`` can widen it: the freed area makes a
        block free, or the free spans blocks (5.4 :1016, 7.1.3 :1048)."""
        return (end - start) >= self.PCPU_BITMAP_BLOCK_BITS or s_index != e_index

    def pcpu_free_update_chunk_md(self, chunk: PcpuChunk54, s_index: int, start: int, end: int) -> None:
        """The last ``else`` of ``pcpu_block_update_hint_free``, a method of its own so that ``mainline-fixed`` can
        change its one expression: ``end`` is passed block relative, as the C does (5.4 :1023, 7.1.3 :1055)."""
        self.pcpu_block_update(chunk.chunk_md, self.pcpu_block_off_to_off(s_index, start), end)

    # -- allocation path ----------------------------------------------------------

    def pcpu_find_block_fit(self, chunk: PcpuChunk54, alloc_bits: int, align: int, pop_only: bool) -> int:  # type: ignore[override]
        """5.4 ``pcpu_find_block_fit``: the contig check and the fit iterator on ``chunk_md``, from ``pcpu_next_hint``."""
        chunk_md = chunk.chunk_md

        # check chunk_md->contig_hint to see if alloc can fit
        bit_off = ALIGN(chunk_md.contig_hint_start, align) - chunk_md.contig_hint_start
        if bit_off + alloc_bits > chunk_md.contig_hint:
            return -1

        bit_off = self.pcpu_next_hint(chunk_md, alloc_bits)
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

    def pcpu_find_zero_area(
        self, map: Bitmap, size: int, start: int, nr: int, align_mask: int, largest_off: int, largest_bits: int
    ) -> tuple[int, int, int]:
        """``pcpu_find_zero_area``: ``bitmap_find_next_zero_area_off`` remembering the largest area skipped.

        Returns ``(index, largest_off, largest_bits)`` (C's two out
        parameters); on failure ``index`` is past ``size``.
        """
        while True:
            index = map.find_next_zero_bit(size, start)

            # Align allocation
            index = (index + align_mask) & ~align_mask  # __ALIGN_MASK
            area_off = index

            end = index + nr
            if end > size:
                return end, largest_off, largest_bits
            i = map.find_next_bit(end, index)
            if i < end:
                area_bits = i - area_off
                # remember largest unused area with best alignment
                if area_bits > largest_bits or (
                    area_bits == largest_bits and largest_off and (not area_off or ffs0(area_off) > ffs0(largest_off))
                ):
                    largest_off = area_off
                    largest_bits = area_bits

                start = i + 1
                continue
            return index, largest_off, largest_bits

    def pcpu_alloc_area(self, chunk: PcpuChunk54, alloc_bits: int, align: int, start: int) -> int:  # type: ignore[override]
        """5.4 ``pcpu_alloc_area``: allocate from ``start``; the byte offset, or -1.

        The window is clipped to the bitmap ("percpu: do not search past
        bitmap when allocating an area"); the largest area skipped updates
        its block (``pcpu_block_update_scan``).
        """
        chunk_md = chunk.chunk_md
        align_mask = (align - 1) if align else 0
        area_off = area_bits = 0

        oslot = self.pcpu_chunk_slot(chunk)

        # search to find a fit
        end = min(start + alloc_bits + self.PCPU_BITMAP_BLOCK_BITS, self.pcpu_chunk_map_bits(chunk))
        bit_off, area_off, area_bits = self.pcpu_find_zero_area(
            chunk.alloc_map, end, start, alloc_bits, align_mask, area_off, area_bits
        )
        if bit_off >= end:
            return -1

        if area_bits:
            self.pcpu_block_update_scan(chunk, area_off, area_bits)

        # update alloc map
        chunk.alloc_map.bitmap_set(bit_off, alloc_bits)
        # update boundary map
        chunk.bound_map.set_bit(bit_off)
        chunk.bound_map.bitmap_clear(bit_off + 1, alloc_bits - 1)
        chunk.bound_map.set_bit(bit_off + alloc_bits)

        chunk.free_bytes -= alloc_bits * PCPU_MIN_ALLOC_SIZE

        # update first free bit
        if bit_off == chunk_md.first_free:
            chunk_md.first_free = chunk.alloc_map.find_next_zero_bit(
                self.pcpu_chunk_map_bits(chunk), bit_off + alloc_bits
            )

        self.pcpu_block_update_hint_alloc(chunk, bit_off, alloc_bits)

        self.pcpu_chunk_relocate(chunk, oslot)

        return bit_off * PCPU_MIN_ALLOC_SIZE

    def pcpu_free_area(self, chunk: PcpuChunk54, off: int) -> None:  # type: ignore[override]
        """5.4 ``pcpu_free_area``: free the allocation at byte offset ``off``; ``chunk_md.first_free`` for ``first_bit``."""
        chunk_md = chunk.chunk_md

        oslot = self.pcpu_chunk_slot(chunk)

        bit_off = off // PCPU_MIN_ALLOC_SIZE

        # find end index
        end = chunk.bound_map.find_next_bit(self.pcpu_chunk_map_bits(chunk), bit_off + 1)
        bits = end - bit_off
        chunk.alloc_map.bitmap_clear(bit_off, bits)

        # update metadata
        chunk.free_bytes += bits * PCPU_MIN_ALLOC_SIZE

        # update first free bit
        chunk_md.first_free = min(chunk_md.first_free, bit_off)

        self.pcpu_block_update_hint_free(chunk, bit_off, bits)

        self.pcpu_chunk_relocate(chunk, oslot)

    # -- chunk creation and population ----------------------------------------------

    def pcpu_init_md_block(self, block: PcpuBlockMd, nr_bits: int) -> None:
        """``pcpu_init_md_block`` ("percpu: make pcpu_block_md generic"): a wholly free block of ``nr_bits``."""
        block.scan_hint = 0
        block.contig_hint = nr_bits
        block.left_free = nr_bits
        block.right_free = nr_bits
        block.first_free = 0
        block.nr_bits = nr_bits

    def pcpu_init_md_blocks(self, chunk: PcpuChunk54) -> None:  # type: ignore[override]
        # init the chunk's block
        self.pcpu_init_md_block(chunk.chunk_md, self.pcpu_chunk_map_bits(chunk))
        for md_block in chunk.md_blocks:
            self.pcpu_init_md_block(md_block, self.PCPU_BITMAP_BLOCK_BITS)

    def _zalloc_chunk(self, name: str, nr_pages: int) -> PcpuChunk54:  # type: ignore[override]
        nr_bits = self.pcpu_nr_pages_to_map_bits(nr_pages)
        return self.chunk_type.zalloc(name, nr_pages, nr_bits, nr_bits // self.PCPU_BITMAP_BLOCK_BITS)

    def pcpu_alloc_chunk(self) -> PcpuChunk54:  # type: ignore[override]
        """5.4 ``pcpu_alloc_chunk``: the hints are all ``pcpu_init_md_blocks``'; only ``free_bytes`` is set here."""
        chunk = self._zalloc_chunk("dynamic", self.pcpu_unit_pages)
        chunk.nr_pages = self.pcpu_unit_pages
        self.pcpu_init_md_blocks(chunk)
        # init metadata
        chunk.free_bytes = chunk.nr_pages * self.PAGE_SIZE
        return chunk

    def pcpu_chunk_populated(self, chunk: PcpuChunk54, page_start: int, page_end: int) -> None:  # type: ignore[override]
        """5.4 ``pcpu_chunk_populated``: no ``for_alloc``; the pages count as empty (the alloc path
        already took one off for each wholly free block it broke)."""
        nr = page_end - page_start
        chunk.populated.bitmap_set(page_start, nr)
        chunk.nr_populated += nr
        self.pcpu_nr_populated += nr

        self.pcpu_update_empty_pages(chunk, nr)

    def pcpu_chunk_depopulated(self, chunk: PcpuChunk54, page_start: int, page_end: int) -> None:  # type: ignore[override]
        """5.4 ``pcpu_chunk_depopulated``."""
        nr = page_end - page_start
        chunk.populated.bitmap_clear(page_start, nr)
        chunk.nr_populated -= nr
        self.pcpu_nr_populated -= nr

        self.pcpu_update_empty_pages(chunk, -nr)

    # -- pcpu_alloc() for one chunk --------------------------------------------------

    def pcpu_alloc(self, chunk: PcpuChunk54, bit_size: int, bit_align: int, is_atomic: bool) -> int:  # type: ignore[override]
        """What 5.4's ``pcpu_alloc`` does with one chunk: the byte offset, or -1.

        As 4.14, except that a dynamic chunk that fails ``pcpu_find_block_fit``
        on a slot below ``PCPU_SLOT_FAIL_THRESHOLD`` is moved to slot 0
        ("percpu: relegate chunks unusable when failing small allocations"),
        and pages populated for the area go through ``pcpu_chunk_populated``.
        """
        size = bit_size * PCPU_MIN_ALLOC_SIZE
        if chunk is self.pcpu_reserved_chunk:
            off = self.pcpu_find_block_fit(chunk, bit_size, bit_align, is_atomic)
            if off < 0:
                return -1
        else:
            slot = chunk.slot
            if slot < self.pcpu_size_to_slot(size):
                return -1
            off = self.pcpu_find_block_fit(chunk, bit_size, bit_align, is_atomic)
            if off < 0:
                if slot < self.PCPU_SLOT_FAIL_THRESHOLD:
                    self.pcpu_chunk_move(chunk, 0)
                return -1
        off = self.pcpu_alloc_area(chunk, bit_size, bit_align, off)
        if off < 0:
            return -1

        if not is_atomic:
            self.pcpu_alloc_populate(chunk, off, size)
        return off

    def pcpu_alloc_populate(self, chunk: PcpuChunk54, off: int, size: int) -> None:  # type: ignore[override]
        """The ``if (!is_atomic)`` block of 5.4's ``pcpu_alloc``: ``pcpu_chunk_populated(chunk, rs, re)``."""
        page_start = self.PFN_DOWN(off)
        page_end = self.PFN_UP(off + size)
        for rs, re in self.pcpu_unpop_regions(chunk, page_start, page_end):
            self.pcpu_chunk_populated(chunk, rs, re)
