"""The Z3 encoding of ``linux-4.14`` (model/linux_4_14.py) over ``SymChunk414``, and what 5.4's encoding keeps of it.

One builder per function of the model, in the model's order and under its
names; each cites the 4.14 commit its model function cites.  The
conventions are ``encode.py``'s: a C ``if`` is a merge of both branches, a
loop is unrolled to a bound with ``unrolled`` recording that the bound
sufficed, a block pointer is re-read after a write.  Offsets stay in bits,
slots in bytes (``size`` arguments are bytes, as in 4.14 on).

``SymLinux54`` (encode_linux_5_4.py) derives from this class as the model's
``Linux54`` derives from ``Linux414``: what 5.2 left alone (the slots, the
block pointer, the free-area and fit iterators, ``pcpu_is_populated``,
``pcpu_free_area``) is written once, here, behind the hooks the model has
(``pcpu_next_fit_start``) or that name the one field 5.2 moved
(``chunk_contig``, ``chunk_first_bit``: ``contig_bits`` and ``first_bit``
became ``chunk_md``'s).

Loops and their bounds: ``pcpu_block_refresh_hint`` visits at most
``ceil(B / 2)`` free runs of a block; ``pcpu_for_each_md_free_region`` is
one pass over the blocks (each block yields at most its carried run and its
contig hint, the last a trailing run); ``pcpu_find_block_fit``'s iterator
visits a block per round, the ``pop_only`` restarts included, for
``3 * nr_blocks + 2`` rounds.  The proofs check each bound (their sanity
query), conformance checks the rest.

Bitmap accesses out of bounds: every md_blocks index and population scan
records ``oob`` as ``model/bitmap.py`` logs it; scans of one block's bits
read the block's segment, whose only way out of bounds is its index (logged
with the block pointer, a write, as ``MdBlocks`` does).  4.14's
``pcpu_alloc_area`` searches up to ``start + alloc_bits + B``, past the
bitmap near its end: a read out of bounds, as the model logs it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import z3

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.linux_4_14 import PcpuChunk414
from pcpuverify.symbolic.bv import ALIGN, Bits, Bool, I, Int, ite, lowest_set, one_bit, range_mask, smax, smin, to_amount
from pcpuverify.symbolic.encode import SymPercpu, SymStep
from pcpuverify.symbolic.release_state import LAYOUT_414, SymChunk414, well_formed414
from pcpuverify.symbolic.state import SymBlock, ghost_width

Chunk = Any  # a SymChunk414, or a SymChunk54 in the subclass: the hooks below name what differs


def ffs0(x: Int) -> Int:
    """``__ffs(x)`` (meaningful for x != 0, where the C calls it)."""
    return lowest_set(x, x.size())


def better_aligned(start: Int, old_start: Int) -> Bool:
    """The tie rule of "percpu: keep track of the best offset for contig hints": ``old_start`` is set and
    ``start`` is 0 or has more trailing zero bits."""
    return z3.And(old_start != 0, z3.Or(start == 0, ffs0(start) > ffs0(old_start)))


class SymLinux414(SymPercpu):
    """Encoding of variant ``linux-4.14``: mm/percpu.c of v4.14.5, the bitmap allocator as merged."""

    variant = "linux-4.14"
    chunk_layout: type = PcpuChunk414
    PCPU_SLOT_BASE_SHIFT = 5  # 4.14 on: slots are computed in bytes
    # the 2017 block contracts (proofs/blocks/) are stated on the posting's SymChunk; 4.14's blocks have its
    # fields but another update (the tie rule, first_free): no blockB / NxblockB rows (SymLinux54 has its own)
    block_contracts: str | None = None

    def __init__(self, geometry: Geometry, max_bits: int | None = None) -> None:
        super().__init__(geometry, max_bits)
        self.log_B = self.B.bit_length() - 1
        self.pcpu_unit_size = self.N * self.PAGE_SIZE
        self.pcpu_nr_slots = self._pcpu_size_to_slot_int(self.pcpu_unit_size) + 2

    # -- the state this encoding works on ---------------------------------------------

    def fresh_chunk(self, prefix: str) -> SymChunk414:  # type: ignore[override]
        return LAYOUT_414.fresh(self.g, prefix)  # type: ignore[no-any-return]

    def well_formed(self, chunk: SymChunk414) -> z3.BoolRef:  # type: ignore[override]
        return well_formed414(chunk)

    def pcpu_alloc_chunk(self) -> SymChunk414:  # type: ignore[override]
        """4.14 ``pcpu_alloc_chunk``: zeroed memory, ``pcpu_init_md_blocks``, ``contig_bits`` and ``free_bytes``."""
        values = dict.fromkeys(LAYOUT_414.flat_names(self.g), 0)
        for i in range(self.N):  # pcpu_init_md_blocks: every block free
            for f in ("contig_hint", "left_free", "right_free"):
                values[f"md_blocks[{i}].{f}"] = self.B
        values.update(contig_bits=self.n, free_bytes=self.N * self.PAGE_SIZE, slot=-1)
        return LAYOUT_414.constant(self.g, values)  # type: ignore[no-any-return]

    # -- what 5.2 moved into chunk_md: the chunk's contig hint and first free bit -----------

    def chunk_contig(self, chunk: Chunk) -> tuple[Int, Int]:
        """The chunk's contig hint and its start: 4.14's ``contig_bits``, ``contig_bits_start``."""
        return chunk.contig_bits, chunk.contig_bits_start

    def chunk_first_bit(self, chunk: Chunk) -> Int:
        """No free bit below this: 4.14's ``first_bit``."""
        return chunk.first_bit  # type: ignore[no-any-return]

    def set_chunk_first_bit(self, chunk: Chunk, value: Int) -> Chunk:
        return chunk.set(first_bit=value)

    # -- md_blocks[] and a block's bits ------------------------------------------------

    def md(self, chunk: Chunk, index: Int | int) -> Any:  # type: ignore[override]
        """``chunk->md_blocks[index]``; zeros past the array (the model's scratch block)."""
        if isinstance(index, int):
            return chunk.md_blocks[index]
        block = type(chunk.md_blocks[0]).zero()
        for k in range(self.N):
            block = chunk.md_blocks[k].merge(index == k, block)
        return block

    def block_bits(self, chunk: Chunk, index: Int | int) -> Bits:
        """``pcpu_index_alloc_map(chunk, index)`` scanned up to ``PCPU_BITMAP_BLOCK_BITS``: the block's segment."""
        B = self.B
        if isinstance(index, int):
            return Bits(z3.Extract((index + 1) * B - 1, index * B, chunk.alloc_map), B)
        seg = z3.Extract(B - 1, 0, z3.LShR(z3.ZeroExt(B, chunk.alloc_map), to_amount(index * B, self.n + B)))
        return Bits(seg, B)

    def touch(self, chunk: Chunk, index: Int, when: Bool | bool = True) -> Chunk:
        """A block pointer ``chunk->md_blocks + index`` used under ``when``: past the array it is written through."""
        return self.oob(chunk, z3.And(when, self.md_oob(index)), write=True)  # type: ignore[arg-type]

    # -- slots: in bytes ("percpu: replace area map allocator with bitmap allocator", as merged) ------

    def _pcpu_size_to_slot_int(self, size: int) -> int:
        return max(size.bit_length() - self.PCPU_SLOT_BASE_SHIFT + 2, 1)

    def _pcpu_size_to_slot(self, size: Int) -> Int:
        """``__pcpu_size_to_slot`` in bytes (4.14 on)."""
        return smax(self.fls(size) - self.PCPU_SLOT_BASE_SHIFT + 2, I(1))

    def pcpu_size_to_slot(self, size: Int) -> Int:
        return z3.If(size == self.pcpu_unit_size, I(self.pcpu_nr_slots - 1), self._pcpu_size_to_slot(size))

    def pcpu_chunk_slot(self, chunk: SymChunk414) -> Int:  # type: ignore[override]
        """4.14: the slot of ``free_bytes``, 0 when nothing fits (``contig_bits`` 0)."""
        return z3.If(z3.Or(chunk.free_bytes < PCPU_MIN_ALLOC_SIZE, chunk.contig_bits == 0), I(0),
                     self.pcpu_size_to_slot(chunk.free_bytes))

    def pcpu_chunk_relocate(self, chunk: Chunk, oslot: Int) -> Chunk:  # type: ignore[override]
        nslot = self.pcpu_chunk_slot(chunk)
        return chunk.set(slot=z3.If(oslot != nslot, nslot, chunk.slot))

    # -- metadata free area iterators ("percpu: use metadata blocks to update the chunk contig hint",
    #    "percpu: fix iteration to prevent skipping over block") ---------------------------------

    def pcpu_md_free_regions(self, chunk: Chunk, bit_off: Int) -> list[tuple[Bool, Int, Int]]:
        """``pcpu_for_each_md_free_region(chunk, bit_off, bits)`` from ``bit_off``: each region as
        ``(emitted, start, end)``, in order; one pass over the blocks (see the module docstring)."""
        B = self.B
        s_index, s_off = self.pcpu_off_to_block_index(bit_off), self.pcpu_off_to_block_off(bit_off)
        regions: list[tuple[Bool, Int, Int]] = []
        carry, carry_start = I(0), I(0)
        for k in range(self.N):
            block = chunk.md_blocks[k]
            active = z3.And(bit_off >= 0, s_index <= k)
            # the area carried from the blocks before
            has = z3.And(active, carry != 0)
            total = carry + block.left_free
            whole = z3.And(has, block.left_free == B)
            emit_carry = z3.And(has, block.left_free != B)
            regions.append((emit_carry, carry_start, carry_start + total))
            block_off = z3.If(emit_carry, block.left_free + 1, z3.If(s_index == k, s_off, I(0)))
            # the block's contig hint, unless the next region starts past this block
            here = z3.And(active, z3.Not(whole), block_off < B)
            hint = z3.And(here, block.contig_hint != 0, block.contig_hint_start >= block_off,
                          block.contig_hint + block.contig_hint_start < B)
            regions.append((hint, k * B + block.contig_hint_start, k * B + block.contig_hint_start + block.contig_hint))
            # the right free area starts the next carry
            right = z3.And(here, z3.Or(z3.Not(hint), block.contig_hint_start + block.contig_hint + 1 < B))
            carry_start = z3.If(right, I((k + 1) * B) - block.right_free, carry_start)
            carry = z3.If(whole, total, z3.If(right, block.right_free, I(0)))
        regions.append((carry != 0, carry_start, carry_start + carry))
        return regions

    # -- hints ------------------------------------------------------------------

    def pcpu_cnt_pop_pages_in(self, chunk: SymChunk414, bit_off: Int, bits: Int) -> Int:
        """4.14 ``pcpu_cnt_pop_pages(chunk, bit_off, bits)``: populated pages wholly inside the area, as the
        difference of two weights (PATCH 09's page-range ``pcpu_cnt_pop_pages``); a region of the chunk, so
        both weights stay inside ``populated``."""
        page_start = (bit_off + self.B - 1) >> self.log_B
        page_end = (bit_off + bits) >> self.log_B
        count, _ = self.pcpu_cnt_pop_pages(chunk, page_start, page_end)  # type: ignore[arg-type]
        return z3.If(page_start >= page_end, I(0), count)

    def pcpu_chunk_update(self, chunk: SymChunk414, bit_off: Int, bits: Int) -> SymChunk414:
        """``pcpu_chunk_update`` ("percpu: keep track of the best offset for contig hints")."""
        gt = bits > chunk.contig_bits
        tie = z3.And(bits == chunk.contig_bits, better_aligned(bit_off, chunk.contig_bits_start))
        return chunk.set(contig_bits_start=z3.If(z3.Or(gt, tie), bit_off, chunk.contig_bits_start),
                         contig_bits=z3.If(gt, bits, chunk.contig_bits))

    def pcpu_chunk_refresh_hint(self, chunk: SymChunk414) -> SymChunk414:
        """4.14 ``pcpu_chunk_refresh_hint``: ``contig_bits`` and ``nr_empty_pop_pages`` (chunk and global: the
        one chunk is never the reserved one) from the free areas the blocks' hints describe, from ``first_bit``."""
        nr_empty: Int = I(0)
        scanned = chunk.set(contig_bits=I(0))
        for emitted, start, end in self.pcpu_md_free_regions(chunk, chunk.first_bit):
            scanned = self.pcpu_chunk_update(scanned, start, end - start).merge(emitted, scanned)
            nr_empty = nr_empty + z3.If(emitted, self.pcpu_cnt_pop_pages_in(chunk, start, end - start), I(0))
        return scanned.set(
            pcpu_nr_empty_pop_pages=chunk.pcpu_nr_empty_pop_pages + nr_empty - chunk.nr_empty_pop_pages,
            nr_empty_pop_pages=nr_empty,
        )

    def pcpu_block_update(self, block: SymBlock, start: Int, end: Int) -> SymBlock:  # type: ignore[override]
        """4.14 ``pcpu_block_update``: a block given the whole free area ``[start, end)`` within it ("percpu:
        update free path to take advantage of contig hints"; the tie, "percpu: keep track of the best offset
        for contig hints")."""
        contig = end - start
        gt = contig > block.contig_hint
        tie = z3.And(contig == block.contig_hint, better_aligned(start, block.contig_hint_start))
        return SymBlock(
            contig_hint=z3.If(gt, contig, block.contig_hint),
            contig_hint_start=z3.If(z3.Or(gt, tie), start, block.contig_hint_start),
            left_free=z3.If(start == 0, contig, block.left_free),
            right_free=z3.If(end == self.B, contig, block.right_free),
            first_free=smin(block.first_free, start),
        )

    def pcpu_block_free_runs(self, view: Bits, start: Int, block: Any) -> Any:
        """``pcpu_for_each_unpop_region(alloc_map, rs, re, start, PCPU_BITMAP_BLOCK_BITS)`` feeding
        ``pcpu_block_update(block, rs, re)``; at most ``ceil(B / 2)`` runs."""
        B = I(self.B)
        rs, _ = view.find_next_zero_bit(B, start)
        re, _ = view.find_next_bit(B, rs + 1)
        for _ in range((self.B + 1) // 2):
            more = rs < re
            block = self.pcpu_block_update(block, rs, re).merge(more, block)
            nrs, _ = view.find_next_zero_bit(B, re + 1)
            nre, _ = view.find_next_bit(B, nrs + 1)
            rs, re = z3.If(more, nrs, rs), z3.If(more, nre, re)
        self.unrolled.append(rs >= re)
        return block

    def pcpu_block_refresh_hint(self, chunk: SymChunk414, index: Int | int) -> SymChunk414:  # type: ignore[override]
        """4.14 ``pcpu_block_refresh_hint``: rescan block ``index`` from its ``first_free``."""
        block = self.md(chunk, index)
        cleared = replace(block, contig_hint=I(0), left_free=I(0), right_free=I(0))
        rescanned = self.pcpu_block_free_runs(self.block_bits(chunk, index), block.first_free, cleared)
        return self.put(self.touch(chunk, index) if not isinstance(index, int) else chunk, index, rescanned)  # type: ignore[arg-type]

    def pcpu_area_blocks(self, chunk: Chunk, bit_off: Int, bits: Int) -> tuple[Chunk, Int, Int, Int, Int]:
        """The head of 4.14's hint updates (4.14 and 5.4 alike): ``s_index``, ``e_index`` (the last block of the
        area), ``s_off`` and ``e_off`` (one past the area within ``e_index``), and both block pointers taken."""
        s_index = self.pcpu_off_to_block_index(bit_off)
        e_index = self.pcpu_off_to_block_index(bit_off + bits - 1)
        s_off = self.pcpu_off_to_block_off(bit_off)
        e_off = self.pcpu_off_to_block_off(bit_off + bits - 1) + 1
        return self.touch(self.touch(chunk, s_index), e_index), s_index, e_index, s_off, e_off

    def pcpu_freed_extent(self, chunk: Chunk, s_index: Int, e_index: Int, s_off: Int, e_off: Int) -> tuple[Int, Int]:
        """The free path's ``start`` and ``end``: the freed area grown to the free bits around it within its
        blocks, the scan skipped where it meets a contig hint (4.14 and 5.4 alike)."""
        s_block, e_block = self.md(chunk, s_index), self.md(chunk, e_index)
        l_bit, _ = self.block_bits(chunk, s_index).find_last_bit(s_off)
        start = z3.If(s_off == s_block.contig_hint + s_block.contig_hint_start, s_block.contig_hint_start,
                      z3.If(s_off == l_bit, I(0), l_bit + 1))
        nb, _ = self.block_bits(chunk, e_index).find_next_bit(I(self.B), e_off)
        end = z3.If(e_off == e_block.contig_hint_start, e_block.contig_hint_start + e_block.contig_hint, nb)
        return start, end

    def pcpu_block_update_hint_alloc(self, chunk: SymChunk414, bit_off: Int, bits: Int) -> SymChunk414:  # type: ignore[override]
        """4.14 ``pcpu_block_update_hint_alloc`` ("percpu: update alloc path to only scan if contig hints are
        broken"): ``e_index`` is the last block of the area; the chunk is refreshed iff the area starts
        inside ``contig_bits``."""
        B = self.B
        chunk, s_index, e_index, s_off, e_off = self.pcpu_area_blocks(chunk, bit_off, bits)
        same = s_index == e_index

        # Update s_block: first_free if the allocation takes its place, a scan if the hint breaks.
        s_block = self.md(chunk, s_index)
        ff, _ = self.block_bits(chunk, s_index).find_next_zero_bit(I(B), s_off + bits)
        s_block = replace(s_block, first_free=z3.If(s_off == s_block.first_free, ff, s_block.first_free))
        broken = z3.And(s_block.contig_hint_start <= s_off, s_off < s_block.contig_hint_start + s_block.contig_hint)
        rescan = self.pcpu_block_refresh_hint(self.put(chunk, s_index, s_block), s_index)  # type: ignore[arg-type]
        manual = self.put(chunk, s_index, replace(
            s_block,
            left_free=smin(s_block.left_free, s_off),
            right_free=z3.If(same, smin(s_block.right_free, B - e_off), I(0)),
        ))
        chunk = rescan.merge(broken, manual)

        # Update e_block: the allocation across blocks ends along its left part.
        apart = z3.Not(same)
        e_block = self.md(chunk, e_index)
        ff, _ = self.block_bits(chunk, e_index).find_next_zero_bit(I(B), e_off)
        e_block = replace(e_block, first_free=ff)
        inner = e_off != B
        e_broken = z3.And(inner, e_off > e_block.contig_hint_start)
        e_rescan = self.pcpu_block_refresh_hint(self.put(chunk, e_index, e_block), e_index)  # type: ignore[arg-type]
        e_manual = self.put(chunk, e_index, replace(
            e_block,
            left_free=z3.If(inner, I(0), e_block.left_free),
            right_free=z3.If(inner, smin(e_block.right_free, B - e_off), e_block.right_free),
        ))
        chunk = e_rescan.merge(e_broken, e_manual).merge(apart, chunk)

        # update in-between md_blocks (through e_block itself when the area ends it)
        e_end = z3.If(inner, e_index, e_index + 1)
        for k in range(self.N):
            cleared = replace(chunk.md_blocks[k], contig_hint=I(0), left_free=I(0), right_free=I(0))
            chunk = self.put(chunk, k, cleared, z3.And(apart, s_index + 1 <= k, k < e_end))  # type: ignore[arg-type]

        # a full chunk scan is required only if the chunk contig hint is broken
        broken_chunk = z3.And(chunk.contig_bits_start <= bit_off, bit_off < chunk.contig_bits_start + chunk.contig_bits)
        return self.pcpu_chunk_refresh_hint(chunk).merge(broken_chunk, chunk)

    def pcpu_block_update_hint_free(self, chunk: SymChunk414, bit_off: Int, bits: Int) -> SymChunk414:  # type: ignore[override]
        """4.14 ``pcpu_block_update_hint_free`` ("percpu: update free path to take advantage of contig hints"):
        the chunk is refreshed when the free makes a page free or spans blocks, else raised with
        ``pcpu_chunk_update`` to the start block's hint ("contig_bits may be off by up to a page")."""
        B = self.B
        chunk, s_index, e_index, s_off, e_off = self.pcpu_area_blocks(chunk, bit_off, bits)
        same = s_index == e_index
        s_block = self.md(chunk, s_index)
        # the free area's start and end within their blocks
        start, end = self.pcpu_freed_extent(chunk, s_index, e_index, s_off, e_off)

        # update s_block
        s_new = self.pcpu_block_update(s_block, start, z3.If(same, end, I(B)))
        chunk = self.put(chunk, s_index, s_new)

        # update e_block, reset md_blocks in the middle
        apart = z3.Not(same)
        chunk = self.put(chunk, e_index, self.pcpu_block_update(self.md(chunk, e_index), I(0), end), apart)
        for k in range(self.N):
            free = SymBlock(contig_hint=I(B), contig_hint_start=I(0), left_free=I(B), right_free=I(B), first_free=I(0))
            chunk = self.put(chunk, k, free, z3.And(apart, s_index + 1 <= k, k < e_index))

        # refresh when the free makes a page free (a page is a block here: PCPU_BITS_PER_PAGE == B) or spans
        # blocks: ALIGN_DOWN(end, B) > ALIGN(start, B) within one block is start == 0 and end == B
        refresh = z3.Or(z3.And(start == 0, end == B), apart)
        raised = self.pcpu_chunk_update(chunk, s_index * B + start, s_new.contig_hint)
        return self.pcpu_chunk_refresh_hint(chunk).merge(refresh, raised)

    # -- allocation path --------------------------------------------------------

    def pcpu_is_populated(self, chunk: Chunk, bit_off: Int, bits: Int) -> tuple[Bool, Int, Bool]:  # type: ignore[override]
        """4.14 ``pcpu_is_populated(chunk, bit_off, bits, &next_off)`` in bits: (populated, next_off, oob)."""
        page_start = bit_off >> self.log_B
        page_end = (bit_off + bits + self.B - 1) >> self.log_B
        rs, re, oob = self.pcpu_next_unpop(chunk, page_start, page_end)
        return rs >= page_end, re * self.B, oob

    def pcpu_next_fit_start(self, block: Any, alloc_bits: Int) -> Int:
        """Where ``pcpu_next_fit_region`` starts scanning a block that fits: ``block->first_free`` in 4.14."""
        return block.first_free  # type: ignore[no-any-return]

    def pcpu_fit_search_start(self, chunk: Chunk, alloc_bits: Int) -> Int:
        """Where ``pcpu_find_block_fit`` starts its iterator: 4.14's ``first_bit``."""
        return self.chunk_first_bit(chunk)

    def pcpu_find_block_fit(self, chunk: Chunk, alloc_bits: Int, align: Int, pop_only: Bool) -> tuple[Int, Bool]:  # type: ignore[override]
        """4.14 ``pcpu_find_block_fit``: the contig check ("percpu: skip chunks if the alloc does not fit in the
        contig hint"), then ``pcpu_for_each_fit_region`` from ``pcpu_fit_search_start``, a block per round.

        Returns (bit offset or -1, oob).
        """
        B, N, n = self.B, self.N, self.n
        contig, contig_start = self.chunk_contig(chunk)
        too_big = ALIGN(contig_start, align) - contig_start + alloc_bits > contig

        start = self.pcpu_fit_search_start(chunk, alloc_bits)
        i, block_off = self.pcpu_off_to_block_index(start), self.pcpu_off_to_block_off(start)
        carry, carry_off = I(0), I(0)
        done: Bool = z3.BoolVal(False)
        result: Int = I(n)
        oob: Bool = z3.BoolVal(False)
        for _ in range(3 * N + 2):
            act = z3.And(z3.Not(done), i < N)
            block = self.md(chunk, i)
            # handles contig area across blocks
            has = carry != 0
            total = carry + block.left_free
            fit_carry = z3.And(has, total >= alloc_bits)
            whole = z3.And(has, z3.Not(fit_carry), block.left_free == B)
            rest = z3.And(z3.Not(fit_carry), z3.Not(whole))
            # check block->contig_hint
            h_bits = ALIGN(block.contig_hint_start, align) - block.contig_hint_start
            fit_hint = z3.And(rest, block.contig_hint != 0, block.contig_hint_start >= block_off,
                              block.contig_hint >= h_bits + alloc_bits)
            hint_start = self.pcpu_next_fit_start(block, alloc_bits)
            # the right free area
            r_local = ALIGN(B - block.right_free, align)
            r_bits = B - r_local
            right = z3.And(rest, z3.Not(fit_hint))
            fit_right = z3.And(right, r_bits >= alloc_bits)

            found = z3.Or(fit_carry, fit_hint, fit_right)
            region_off = z3.If(fit_carry, carry_off, z3.If(fit_hint, i * B + hint_start, i * B + r_local))
            region_bits = z3.If(fit_carry, total, z3.If(fit_hint, h_bits + alloc_bits + block.contig_hint_start
                                                        - hint_start, r_bits))
            populated, next_off, o = self.pcpu_is_populated(chunk, region_off, region_bits)
            inside = region_off < n
            oob = z3.Or(oob, z3.And(act, found, inside, pop_only, o))
            stop = z3.And(found, z3.Or(z3.Not(inside), z3.Not(pop_only), populated))
            restart = z3.And(found, z3.Not(stop))

            result = ite(z3.And(act, stop), region_off, result)
            next_i = z3.If(restart, self.pcpu_off_to_block_index(next_off), i + 1)
            carry_next = z3.If(whole, total, z3.If(z3.And(right, z3.Not(fit_right)), r_bits, I(0)))
            carry_off_next = z3.If(z3.And(right, z3.Not(fit_right)), i * B + r_local, carry_off)
            block_off_next = z3.If(restart, self.pcpu_off_to_block_off(next_off), I(0))
            i = ite(z3.And(act, z3.Not(stop)), next_i, i)
            carry = ite(act, z3.If(restart, I(0), carry_next), carry)
            carry_off = ite(act, carry_off_next, carry_off)
            block_off = ite(act, block_off_next, block_off)
            done = z3.Or(done, z3.And(act, stop))
        self.unrolled.append(z3.Or(done, i >= N, too_big))
        off = z3.If(result == n, I(-1), result)
        return z3.If(too_big, I(-1), off), z3.And(z3.Not(too_big), oob)

    def pcpu_set_area(self, chunk: Chunk, bit_off: Int, alloc_bits: Int) -> Chunk:
        """What ``pcpu_alloc_area`` does once it has ``bit_off``, up to the hints: the alloc and boundary maps,
        ``free_bytes``, and the chunk's first free bit moved past an area that starts on it ("percpu: add
        first_bit to keep track of the first free in the bitmap")."""
        n = self.n
        amap, o1 = self.alloc_bits(chunk).with_range(bit_off, alloc_bits, True)
        bound = Bits(chunk.bound_map, n + 1)
        bmap = chunk.bound_map | one_bit(bit_off, n + 1)
        bmap, o2 = Bits(bmap, n + 1).with_range(bit_off + 1, alloc_bits - 1, False)
        end_bit = bit_off + alloc_bits
        bmap = bmap | one_bit(end_bit, n + 1)
        set_oob = z3.Or(bound._oob(bit_off, bit_off + 1), bound._oob(end_bit, end_bit + 1))
        chunk = self.oob(chunk, z3.Or(o1, o2, set_oob), write=True).set(
            alloc_map=amap, bound_map=bmap, free_bytes=chunk.free_bytes - alloc_bits * PCPU_MIN_ALLOC_SIZE)

        first = self.chunk_first_bit(chunk)
        ff, o3 = Bits(chunk.alloc_map, n).find_next_zero_bit(I(n), bit_off + alloc_bits)
        takes_first = bit_off == first
        return self.set_chunk_first_bit(self.oob(chunk, z3.And(takes_first, o3)), z3.If(takes_first, ff, first))

    def pcpu_alloc_area(self, chunk: SymChunk414, alloc_bits: Int, align: Int, start: Int  # type: ignore[override]
                        ) -> tuple[SymChunk414, Bool, Int]:
        """4.14 ``pcpu_alloc_area``: the search window ``start + alloc_bits + B`` is not clipped to the bitmap.
        Returns (state, found, bit_off)."""
        oslot = self.pcpu_chunk_slot(chunk)
        found, bit_off, oob = self.bitmap_find_next_zero_area(chunk, start + alloc_bits + self.B, start,  # type: ignore[arg-type]
                                                              alloc_bits, align)
        failed = self.oob(chunk, oob)
        chunk = self.pcpu_set_area(failed, bit_off, alloc_bits)
        chunk = self.pcpu_block_update_hint_alloc(chunk, bit_off, alloc_bits)
        chunk = self.pcpu_chunk_relocate(chunk, oslot)
        return chunk.merge(found, failed), found, bit_off

    def pcpu_free_area(self, chunk: Chunk, bit_off: Int) -> Chunk:  # type: ignore[override]
        """4.14 ``pcpu_free_area`` of the allocation at ``bit_off`` (size from the boundary map)."""
        n = self.n
        oslot = self.pcpu_chunk_slot(chunk)
        end, o1 = Bits(chunk.bound_map, n + 1).find_next_bit(I(n), bit_off + 1)
        bits = end - bit_off
        amap, o2 = self.alloc_bits(chunk).with_range(bit_off, bits, False)
        chunk = self.oob(self.oob(chunk, o1), o2, write=True).set(
            alloc_map=amap, free_bytes=chunk.free_bytes + bits * PCPU_MIN_ALLOC_SIZE)
        chunk = self.set_chunk_first_bit(chunk, smin(self.chunk_first_bit(chunk), bit_off))
        chunk = self.pcpu_block_update_hint_free(chunk, bit_off, bits)
        return self.pcpu_chunk_relocate(chunk, oslot)

    # -- pcpu_alloc() for one chunk ---------------------------------------------------------

    def pcpu_alloc_no_fit(self, searched: Chunk, start: Chunk) -> Chunk:
        """The chunk after ``pcpu_find_block_fit`` found nothing: 4.14 leaves it where it is."""
        return searched

    def pcpu_alloc_populate(self, chunk: Chunk, off: Int, size: Int) -> Chunk:  # type: ignore[override]
        """The ``if (!is_atomic)`` block of 4.14's ``pcpu_alloc``: ``pcpu_chunk_populated(..., true)``."""
        return self.populate_range(chunk, self.PFN_DOWN(off), self.PFN_UP(off + size), for_alloc=True)

    def alloc(self, chunk: Chunk, bits: Int, align: Int, pop_only: Bool) -> SymStep:  # type: ignore[override]
        """What 4.14's ``pcpu_alloc`` does with the one dynamic chunk (``Linux414.pcpu_alloc``), then the ghost
        records the area."""
        self.unrolled = []
        start = chunk.set(oob=z3.BoolVal(False), oob_write=z3.BoolVal(False))
        size = bits * PCPU_MIN_ALLOC_SIZE
        considered = start.slot >= self.pcpu_size_to_slot(size)
        fit, o = self.pcpu_find_block_fit(start, bits, align, pop_only)
        searched = self.oob(start, z3.And(considered, o))
        no_fit = z3.And(considered, fit < 0)
        allocated, found, bit_off = self.pcpu_alloc_area(searched, bits, align, fit)
        ok = z3.And(considered, fit >= 0, found)

        populated = self.pcpu_alloc_populate(allocated, bit_off * PCPU_MIN_ALLOC_SIZE, size).merge(
            z3.Not(pop_only), allocated)
        gw = ghost_width(self.g)
        post = populated.set(
            g_start=populated.g_start | one_bit(bit_off, gw),
            g_used=populated.g_used | range_mask(bit_off, bit_off + bits, gw),
        )
        failed = self.pcpu_alloc_no_fit(searched, start).merge(no_fit, searched)
        post = post.merge(ok, allocated.merge(z3.And(considered, fit >= 0), failed))
        return SymStep(post, z3.If(ok, bit_off, I(-1)), ok,
                       z3.And(*self.unrolled) if self.unrolled else z3.BoolVal(True))
