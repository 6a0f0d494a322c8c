"""The Z3 encoding of the allocator's transitions, one builder per function of ``model/percpu.py``.

Each method has the name of the kernel function it encodes and follows the
port statement by statement: a C ``if`` becomes a merge of both branches
with ``If``, a loop over blocks is unrolled over the (concrete) number of
blocks with a guard, a block pointer ``chunk->md_blocks + i`` is re-read
after every write so that aliasing stays as in C.  A change to a function
in ``model/percpu.py`` must be mirrored here; conformance (proofs/
conformance.py) checks that the two agree on concrete states.

Over 600 lines: one builder per function of ``model/percpu.py``, in the same order, so that
the two files read side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.symbolic.bv import (
    ALIGN,
    Bits,
    Bool,
    I,
    Int,
    aligned_positions,
    highest_set,
    ite,
    low_mask,
    lowest_set,
    one_bit,
    popcount,
    range_mask,
    run_starts,
    sdiv,
    smax,
    smin,
    to_amount,
)
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.symbolic.longest_run import RunCuts, longest_run
from pcpuverify.symbolic.state import (
    SymBlock,
    SymChunk,
    SymOp,
    block_key,
    constant_chunk,
    flat_names,
    fresh_chunk,
    ghost_width,
    well_formed,
)


@dataclass(frozen=True)
class SymStep:
    """An encoded operation: the state after it, what it returned, and whether the unrolling sufficed."""

    post: SymChunk
    bit_off: Int  # the alloc's bit offset, -1 when it failed; the freed offset for a free
    ok: Bool  # the alloc succeeded
    unrolled: Bool  # every unrolled loop finished within its bound


class SymPercpu:
    """Encoding of variant ``v1-patch09`` (PATCH 09 as posted) for one geometry."""

    variant = "v1-patch09"
    PCPU_SLOT_BASE_SHIFT = 3
    # which block metadata proofs/blocks/ states its contracts on for this encoding (Subject.block_contracts):
    # "2017", the posting's pcpu_bitmap_md (blockB and NxblockB rows); "5.2", the scan_hint pcpu_block_md
    # (blockB rows, proofs/blocks/release_contracts.py); None: no compositional rows
    block_contracts: str | None = "2017"

    def __init__(self, geometry: Geometry, max_bits: int | None = None) -> None:
        self.g = geometry
        self.B = geometry.block_bits
        self.N = geometry.nr_pages  # one md_block per page
        self.n = geometry.nr_bits
        self.PAGE_SIZE = self.B * PCPU_MIN_ALLOC_SIZE
        self.PAGE_SHIFT = self.PAGE_SIZE.bit_length() - 1
        self.aligns = [1 << k for k in range(self.B.bit_length()) if 1 << k <= self.B]
        self.max_bits = max_bits or self.n
        self.pcpu_nr_slots = max(self.n.bit_length() - self.PCPU_SLOT_BASE_SHIFT + 2, 1) + 2
        self.unrolled: list[Bool] = []
        self.run_cuts: RunCuts | None = None  # set: the refresh's longest-run circuit is cut (``_longest_run``)

    # -- the symbolic state this encoding works on (the release encodings have their own) ---------

    chunk_layout: type = PcpuChunk  # the model's chunk class: which invariants apply (invariants/applicability.py)

    def fresh_chunk(self, prefix: str) -> SymChunk:
        return fresh_chunk(self.g, prefix)

    def well_formed(self, chunk: SymChunk) -> z3.BoolRef:
        return well_formed(chunk)

    def pcpu_alloc_chunk(self) -> SymChunk:
        """``pcpu_alloc_chunk()``: a wholly free chunk, no page populated, not yet on a slot."""
        g = self.g
        values = dict.fromkeys(flat_names(g), 0)  # pcpu_mem_zalloc: every field zero, nothing allocated
        for i in range(g.nr_pages):  # pcpu_init_md_blocks: every block free
            for f in ("contig_hint", "left_free", "right_free"):
                values[block_key(i, f)] = g.block_bits
        values["contig_hint"] = values["free_bits"] = g.nr_bits  # init metadata: the whole chunk is free
        values["slot"] = -1  # on no list before pcpu_chunk_relocate(chunk, -1)
        return constant_chunk(g, values)

    # -- conversions -------------------------------------------------------------

    def PFN_DOWN(self, x: Int) -> Int:
        return x >> self.PAGE_SHIFT

    def PFN_UP(self, x: Int) -> Int:
        return (x + self.PAGE_SIZE - 1) >> self.PAGE_SHIFT

    def pcpu_off_to_block_index(self, off: Int) -> Int:
        return off >> (self.B.bit_length() - 1)

    def pcpu_off_to_block_off(self, off: Int) -> Int:
        return off & (self.B - 1)

    def alloc_bits(self, chunk: SymChunk) -> Bits:
        return Bits(chunk.alloc_map, self.n)

    def pcpu_index_alloc_map(self, chunk: SymChunk, index: Int) -> Bits:
        return self.alloc_bits(chunk).view(index * self.B)

    # -- md_blocks[] with a symbolic index ----------------------------------------

    def md(self, chunk: SymChunk, index: Int | int) -> SymBlock:
        """``chunk->md_blocks[index]``; zeros past the array (the model's scratch block)."""
        if isinstance(index, int):
            return chunk.md_blocks[index]
        block = SymBlock.zero()
        for k in range(self.N):
            block = chunk.md_blocks[k].merge(index == k, block)
        return block

    def md_oob(self, index: Int) -> Bool:
        return z3.Or(index < 0, index >= self.N)

    def put(self, chunk: SymChunk, index: Int | int, block: SymBlock, when: Bool | bool = True) -> SymChunk:
        """Write ``block`` at ``index`` (dropped past the array) when ``when`` holds."""
        blocks = tuple(
            block.merge(z3.And(when, index == k) if not isinstance(index, int) else (when if index == k else False), old)
            for k, old in enumerate(chunk.md_blocks)
        )
        return chunk.set(md_blocks=blocks)

    @staticmethod
    def oob(chunk: SymChunk, cond: Bool, write: bool = False) -> SymChunk:
        """Record an out-of-bounds access under ``cond`` (a write also marks the state undefined)."""
        if write:
            return chunk.set(oob=z3.Or(chunk.oob, cond), oob_write=z3.Or(chunk.oob_write, cond))
        return chunk.set(oob=z3.Or(chunk.oob, cond))

    # -- slots ---------------------------------------------------------------------

    def fls(self, x: Int) -> Int:
        """``fls(int)``: a negative int has bit 31 set in C."""
        return z3.If(x == 0, I(0), z3.If(x < 0, I(32), highest_set(x, 16) + 1))

    def __pcpu_size_to_slot(self, bit_size: Int) -> Int:
        return smax(self.fls(bit_size) - self.PCPU_SLOT_BASE_SHIFT + 2, I(1))

    def pcpu_size_to_slot(self, bit_size: Int) -> Int:
        return z3.If(bit_size == self.n, I(self.pcpu_nr_slots - 1), self.__pcpu_size_to_slot(bit_size))

    def pcpu_chunk_slot(self, chunk: SymChunk) -> Int:
        return z3.If(
            z3.Or(chunk.free_bits == 0, chunk.contig_hint == 0), I(0), self.pcpu_size_to_slot(chunk.free_bits)
        )

    def pcpu_chunk_relocate(self, chunk: SymChunk, oslot: Int) -> SymChunk:
        nslot = self.pcpu_chunk_slot(chunk)
        return chunk.set(slot=z3.If(oslot != nslot, nslot, chunk.slot))

    # -- population ----------------------------------------------------------------

    def populated_bits(self, chunk: SymChunk) -> Bits:
        return Bits(chunk.populated, self.N)

    def pcpu_next_unpop(self, chunk: SymChunk, rs: Int, end: Int) -> tuple[Int, Int, Bool]:
        rs, o1 = self.populated_bits(chunk).find_next_zero_bit(end, rs)
        re, o2 = self.populated_bits(chunk).find_next_bit(end, rs + 1)
        return rs, re, z3.Or(o1, o2)

    def pcpu_cnt_pop_pages(self, chunk: SymChunk, start: Int, end: Int) -> tuple[Int, Bool]:
        a, o1 = self.populated_bits(chunk).weight(end)
        b, o2 = self.populated_bits(chunk).weight(start)
        return a - b, z3.Or(o1, o2)

    def populate_range(self, chunk: SymChunk, page_start: Int, page_end: Int, for_alloc: bool = False) -> SymChunk:
        """``pcpu_chunk_populated`` on every unpopulated region of ``[page_start, page_end)``.

        The regions' sizes add up to the number of unpopulated pages in the
        range, which is what the counters gain (the empty-page counters only
        when not ``for_alloc``, the ``fixed`` variant's argument).
        """
        newly = ~chunk.populated & range_mask(page_start, page_end, self.N)
        nr = popcount(newly, self.N)
        oob = z3.And(page_start < page_end, z3.Or(page_start < 0, page_end > self.N))
        chunk = chunk.set(populated=chunk.populated | newly, nr_populated=chunk.nr_populated + nr)
        if not for_alloc:
            chunk = chunk.set(
                nr_empty_pop_pages=chunk.nr_empty_pop_pages + nr,
                pcpu_nr_empty_pop_pages=chunk.pcpu_nr_empty_pop_pages + nr,
            )
        return self.oob(chunk, oob, write=True)

    def pcpu_alloc_populate(self, chunk: SymChunk, off: Int, size: Int) -> SymChunk:
        """The ``if (!is_atomic)`` block of ``pcpu_alloc``."""
        return self.populate_range(chunk, self.PFN_DOWN(off), self.PFN_UP(off + size))

    def depopulate_range(self, chunk: SymChunk, page_start: Int, page_end: Int) -> SymChunk:
        """``pcpu_chunk_depopulated`` on every populated region of ``[page_start, page_end)``."""
        gone = chunk.populated & range_mask(page_start, page_end, self.N)
        nr = popcount(gone, self.N)
        return chunk.set(
            populated=chunk.populated & ~gone,
            nr_populated=chunk.nr_populated - nr,
            nr_empty_pop_pages=chunk.nr_empty_pop_pages - nr,
            pcpu_nr_empty_pop_pages=chunk.pcpu_nr_empty_pop_pages - nr,
        )

    # -- hints -----------------------------------------------------------------------

    def pcpu_chunk_update_hint(self, chunk: SymChunk) -> SymChunk:
        """PATCH 09 ``pcpu_chunk_update_hint``, the block loop unrolled from ``first_free_block``."""
        B = self.B
        is_page_empty: Bool = z3.BoolVal(True)
        hint, hint_start = I(0), chunk.contig_hint_start
        cur_contig, off, nr_empty = I(0), I(0), I(0)
        oob: Bool = z3.BoolVal(False)
        l_pop_off = chunk.first_free_block  # pcpu_block_get_first_page(i) == i: one page per block

        for i in range(self.N):
            block = chunk.md_blocks[i]
            act = chunk.first_free_block <= i
            pop_off = I(i)
            moved = z3.And(act, pop_off > l_pop_off)
            cnt, o = self.pcpu_cnt_pop_pages(chunk, l_pop_off, pop_off)
            nr_empty = ite(z3.And(moved, is_page_empty), nr_empty + cnt, nr_empty)
            oob = z3.Or(oob, z3.And(moved, is_page_empty, o))
            l_pop_off = ite(moved, pop_off, l_pop_off)
            is_page_empty = ite(moved, z3.BoolVal(True), is_page_empty)
            is_page_empty = ite(z3.And(act, block.contig_hint != B), z3.BoolVal(False), is_page_empty)

            # continue from prev block adding to the cur_contig hint
            carry = z3.And(act, cur_contig != 0)
            summed = cur_contig + block.left_free
            skip = z3.And(carry, block.left_free == B)  # `continue`
            better = z3.And(carry, z3.Not(skip), summed > hint)
            hint, hint_start = ite(better, summed, hint), ite(better, off, hint_start)
            cur_contig = ite(skip, summed, ite(carry, I(0), cur_contig))

            body = z3.And(act, z3.Not(skip))
            bigger = z3.And(body, block.contig_hint > hint)
            hint = ite(bigger, block.contig_hint, hint)
            hint_start = ite(bigger, i * B + block.contig_hint_start, hint_start)
            cur_contig = ite(body, block.right_free, cur_contig)
            off = ite(body, (i + 1) * B - block.right_free, off)

        last = cur_contig > hint
        hint, hint_start = ite(last, cur_contig, hint), ite(last, off, hint_start)
        cnt, o = self.pcpu_cnt_pop_pages(chunk, l_pop_off, I(self.N))
        nr_empty = ite(is_page_empty, nr_empty + cnt, nr_empty)
        oob = z3.Or(oob, z3.And(is_page_empty, o))
        chunk = chunk.set(
            contig_hint=hint,
            contig_hint_start=hint_start,
            pcpu_nr_empty_pop_pages=chunk.pcpu_nr_empty_pop_pages + (nr_empty - chunk.nr_empty_pop_pages),
            nr_empty_pop_pages=nr_empty,
        )
        return self.oob(chunk, oob)

    def _longest_run(self, free: z3.BitVecRef, n: int) -> tuple[Int, Int]:
        """(length of the longest run of set bits, where the first such run starts; meaningful for length > 0).

        The circuit of ``symbolic/longest_run.py``, or a cut standing for it where ``run_cuts`` collects them
        (the block contracts at 1024 bits: ``proofs/blocks/run_lemma.py``).
        """
        if self.run_cuts is not None:
            return self.run_cuts.cut(free, n)
        return longest_run(free, n)

    def pcpu_block_refresh_hint(self, chunk: SymChunk, index: Int) -> SymChunk:
        """PATCH 09: the block's runs from ``first_free`` on, as a scan loop finds them.

        Bits below ``first_free`` are never looked at, so they count as
        allocated; the first longest run wins (``block->contig_hint < contig``).
        """
        B = self.B
        block = self.md(chunk, index)
        view = self.pcpu_index_alloc_map(chunk, index)
        seg = z3.Extract(B - 1, 0, z3.LShR(z3.ZeroExt(B, chunk.alloc_map), to_amount(index * B, self.n + B)))
        mapped = seg | low_mask(block.first_free, B)
        length, first_start = self._longest_run(~mapped, B)
        left = z3.If(mapped == 0, I(B), lowest_set(mapped, B))
        right = z3.If(mapped == 0, I(B), I(B - 1) - highest_set(mapped, B))
        new = SymBlock(
            contig_hint=length,
            contig_hint_start=z3.If(length > 0, first_start, block.contig_hint_start),
            left_free=left,
            right_free=right,
            first_free=block.first_free,
        )
        scan_oob = z3.And(block.first_free < B, view._oob(block.first_free, I(B)))
        chunk = self.put(chunk, index, new)
        return self.oob(self.oob(chunk, scan_oob), self.md_oob(index), write=True)

    def _block_range(self, bit_off: Int, bit_size: Int) -> tuple[Int, Int, Int, Int]:
        s_index = self.pcpu_off_to_block_index(bit_off)
        e_index = self.pcpu_off_to_block_index(bit_off + bit_size)
        s_off = self.pcpu_off_to_block_off(bit_off)
        e_off = self.pcpu_off_to_block_off(bit_off + bit_size)
        wrap = e_off == 0
        return s_index, ite(wrap, e_index - 1, e_index), s_off, ite(wrap, I(self.B), e_off)

    def pcpu_block_update_hint_alloc(self, chunk: SymChunk, bit_off: Int, bit_size: Int) -> tuple[SymChunk, Bool]:
        """PATCH 09 ``pcpu_block_update_hint_alloc``; returns whether the chunk hint must be refreshed."""
        B = self.B
        s_index, e_index, s_off, e_off = self._block_range(bit_off, bit_size)
        chunk = self.oob(chunk, z3.Or(self.md_oob(s_index), self.md_oob(e_index)), write=True)

        # Update s_block.
        s_block = self.md(chunk, s_index)
        takes_first = s_off == s_block.first_free
        ff, o = self.pcpu_index_alloc_map(chunk, s_index).find_next_zero_bit(I(B), s_off + bit_size)
        chunk = self.oob(chunk, z3.And(takes_first, o))
        chunk = self.put(chunk, s_index, SymBlock(**{**vars(s_block), "first_free": ff}), takes_first)

        s_block = self.md(chunk, s_index)
        in_hint = z3.And(s_off >= s_block.contig_hint_start, s_off < s_block.contig_hint_start + s_block.contig_hint)
        refreshed = self.pcpu_block_refresh_hint(chunk, s_index)
        manual = SymBlock(
            **{
                **vars(s_block),
                "left_free": smin(s_block.left_free, s_off),
                "right_free": z3.If(s_index == e_index, smin(s_block.right_free, B - e_off), I(0)),
            }
        )
        chunk = refreshed.merge(in_hint, self.put(chunk, s_index, manual))

        # Update e_block.
        apart = s_index != e_index
        e_block = self.md(chunk, e_index)
        ff, o = self.pcpu_index_alloc_map(chunk, e_index).find_next_zero_bit(I(B), e_off)
        moved = self.put(self.oob(chunk, o), e_index, SymBlock(**{**vars(e_block), "first_free": ff}))
        chunk = self.pcpu_block_refresh_hint(moved, e_index).merge(apart, chunk)

        # update in-between md_blocks
        for k in range(self.N):
            between = z3.And(s_index + 1 <= k, k < e_index)
            b = chunk.md_blocks[k]
            chunk = self.put(chunk, k, SymBlock(I(0), b.contig_hint_start, I(0), I(0), b.first_free), between)
        chunk = self.oob(chunk, z3.And(e_index > s_index + 1, e_index > self.N), write=True)

        update_chunk = z3.And(
            bit_off >= chunk.contig_hint_start, bit_off < chunk.contig_hint_start + chunk.contig_hint
        )
        return chunk, update_chunk

    def pcpu_block_update_hint_free(self, chunk: SymChunk, bit_off: Int, bit_size: Int) -> tuple[SymChunk, Bool]:
        """PATCH 09 ``pcpu_block_update_hint_free``; returns whether the chunk hint must be refreshed."""
        B = self.B
        s_index, e_index, s_off, e_off = self._block_range(bit_off, bit_size)
        chunk = self.oob(chunk, z3.Or(self.md_oob(s_index), self.md_oob(e_index)), write=True)
        s_block, e_block = self.md(chunk, s_index), self.md(chunk, e_index)
        start, end, oob = self.free_region(chunk, s_index, e_index, s_off, e_off)
        chunk = self.oob(chunk, oob)

        same = s_index == e_index

        # freeing in the same block
        contig = end - start
        grows = contig > s_block.contig_hint
        same_block = SymBlock(
            contig_hint=z3.If(grows, contig, s_block.contig_hint),
            contig_hint_start=z3.If(grows, start, s_block.contig_hint_start),
            left_free=z3.If(start == 0, contig, s_block.left_free),
            right_free=z3.If(end == B, contig, s_block.right_free),
            first_free=smin(s_block.first_free, start),
        )
        in_block = self.put(chunk, s_index, same_block)

        # freeing across md_blocks
        across = chunk
        lo = z3.If(start == 0, s_index - 1, s_index)
        right_contig = B - start
        r_grows = right_contig > s_block.contig_hint
        s_new = SymBlock(
            contig_hint=z3.If(r_grows, right_contig, s_block.contig_hint),
            contig_hint_start=z3.If(r_grows, start, s_block.contig_hint_start),
            left_free=s_block.left_free,
            right_free=right_contig,
            first_free=smin(s_block.first_free, start),
        )
        across = self.put(across, s_index, s_new, start != 0)
        hi = z3.If(end == B, e_index + 1, e_index)
        e_new = SymBlock(
            contig_hint=z3.If(end > e_block.contig_hint, end, e_block.contig_hint),
            contig_hint_start=z3.If(end > e_block.contig_hint, I(0), e_block.contig_hint_start),
            left_free=end,
            right_free=e_block.right_free,
            first_free=I(0),
        )
        across = self.put(across, e_index, e_new, end != B)
        for k in range(self.N):
            across = self.put(across, k, SymBlock(I(B), I(0), I(B), I(B), I(0)), z3.And(lo + 1 <= k, k < hi))
        across = self.oob(across, z3.And(hi > lo + 1, z3.Or(lo + 1 < 0, hi > self.N)), write=True)
        chunk = in_block.merge(same, across)
        s_index, e_index = z3.If(same, s_index, lo), z3.If(same, e_index, hi)

        update_chunk = self.pcpu_free_refreshes_chunk(chunk, s_index, e_index, start, end)
        s_block = self.md(chunk, s_index)
        raise_hint = z3.And(z3.Not(update_chunk), s_block.contig_hint > chunk.contig_hint)
        chunk = chunk.set(
            contig_hint=z3.If(raise_hint, s_block.contig_hint, chunk.contig_hint),
            contig_hint_start=z3.If(raise_hint, s_index * B + s_block.contig_hint_start, chunk.contig_hint_start),
        )
        return chunk, update_chunk

    def free_region(self, chunk: SymChunk, s_index: Int, e_index: Int, s_off: Int, e_off: Int
                    ) -> tuple[Int, Int, Bool]:
        """PATCH 09 ``pcpu_block_update_hint_free``'s first lines: where the free region starts and ends within
        its blocks (the area grown over the free bits around it, or to the contig hint it abuts), and whether
        the scans read past the bitmap.  The block contracts name it (``proofs/blocks/freed_run.py``)."""
        s_block, e_block = self.md(chunk, s_index), self.md(chunk, e_index)
        abuts = s_off == s_block.contig_hint + s_block.contig_hint_start
        l_bit, o1 = self.pcpu_index_alloc_map(chunk, s_index).find_last_bit(s_off)
        start = z3.If(abuts, s_block.contig_hint_start, z3.If(s_off == l_bit, I(0), l_bit + 1))
        touches = e_off == e_block.contig_hint_start
        nb, o2 = self.pcpu_index_alloc_map(chunk, e_index).find_next_bit(I(self.B), e_off)
        end = z3.If(touches, e_block.contig_hint_start + e_block.contig_hint, nb)
        return start, end, z3.Or(z3.And(z3.Not(abuts), o1), z3.And(z3.Not(touches), o2))

    def pcpu_free_refreshes_chunk(self, chunk: SymChunk, s_index: Int, e_index: Int, start: Int, end: Int) -> Bool:
        """PATCH 09: refresh the chunk's metadata when the free makes a page free or spans blocks."""
        return z3.Or(z3.And(start == 0, end == self.B), s_index != e_index)

    # -- allocation path -------------------------------------------------------------

    def pcpu_is_populated(self, chunk: SymChunk, index: Int, block_off: Int, bit_size: Int) -> tuple[Bool, Int, Bool]:
        """PATCH 09 ``pcpu_is_populated`` as posted (``off`` in bits read as bytes): (populated, next_index, oob)."""
        off = index * self.B + block_off
        e_off = off + bit_size * PCPU_MIN_ALLOC_SIZE
        page_start = self.PFN_DOWN(off)
        page_end = self.PFN_UP(e_off)
        rs, re, oob = self.pcpu_next_unpop(chunk, page_start, self.PFN_UP(e_off))
        return rs >= page_end, sdiv(re * self.PAGE_SIZE, self.B), oob

    def pcpu_find_block_fit(self, chunk: SymChunk, bit_size: Int, align: Int, pop_only: Bool) -> tuple[Int, Bool]:
        """PATCH 09 ``pcpu_find_block_fit``, its loop unrolled; returns (bit offset or -1, oob)."""
        B, N = self.B, self.N
        cur_free, block_off = I(0), I(0)
        s_index = i = chunk.first_free_block
        done: Bool = z3.BoolVal(False)
        oob: Bool = z3.BoolVal(False)
        for _ in range(2 * N + 2):
            act = z3.And(z3.Not(done), i < N)
            block = self.md(chunk, i)

            carried = cur_free + block.left_free
            fits_carried = carried >= bit_size
            whole = z3.And(z3.Not(fits_carried), block.left_free == B)  # `continue`
            own = z3.And(z3.Not(fits_carried), z3.Not(whole))
            hint_off = ALIGN(block.contig_hint_start, align) - block.contig_hint_start
            fits_hint = block.contig_hint >= hint_off + bit_size
            right_off = ALIGN(B - block.right_free, align)
            no_right = z3.And(z3.Not(fits_hint), right_off >= B)  # reset and `continue`
            right_free = B - right_off

            # the values each branch leaves before check_populated
            s_index_b = z3.If(own, z3.If(no_right, i + 1, i), s_index)
            block_off_b = z3.If(
                own, z3.If(fits_hint, block.first_free, z3.If(no_right, I(0), right_off)), block_off
            )
            cur_free_b = z3.If(own, z3.If(fits_hint, I(0), z3.If(no_right, I(0), right_free)), carried)
            end_off = z3.If(own, z3.If(fits_hint, block.contig_hint_start - block.first_free + bit_size, bit_size), bit_size)
            check = z3.And(
                act, z3.Or(fits_carried, z3.And(own, z3.Or(fits_hint, z3.And(z3.Not(no_right), right_free >= bit_size))))
            )

            populated, next_index, o = self.pcpu_is_populated(chunk, s_index_b, block_off_b, end_off)
            oob = z3.Or(oob, z3.And(check, pop_only, o))
            found = z3.And(check, z3.Or(z3.Not(pop_only), populated))
            skip_to = z3.And(check, z3.Not(found))

            s_index = ite(act, ite(skip_to, next_index, s_index_b), s_index)
            block_off = ite(act, ite(skip_to, I(0), block_off_b), block_off)
            cur_free = ite(act, ite(skip_to, I(0), cur_free_b), cur_free)
            i = ite(z3.And(act, z3.Not(found)), ite(skip_to, next_index, i + 1), i)
            done = z3.Or(done, found)
        self.unrolled.append(z3.Or(done, i >= N))
        return z3.If(i == N, I(-1), s_index * B + block_off), oob

    def bitmap_find_next_zero_area(
        self, chunk: SymChunk, size: Int, start: Int, nr: Int, align: Int
    ) -> tuple[Bool, Int, Bool]:
        """The first ``align``-aligned run of ``nr`` clear bits at or after ``start`` below ``size``.

        Returns (found, index, oob).  The lib/bitmap.c loop returns exactly the
        smallest aligned candidate (a skipped position always holds a set
        bit); bits past the bitmap read as clear, so a window past it finds
        room there, as the model does.
        """
        n, xw = self.n, self.n + self.max_bits
        free = ~z3.ZeroExt(self.max_bits, chunk.alloc_map)  # past the bitmap: clear, i.e. free
        cand = run_starts(free, xw, nr) & range_mask(start, I(n), xw) & aligned_positions(align, xw, self.aligns)
        beyond = ALIGN(smax(start, I(n)), align)
        index = z3.If(cand != 0, lowest_set(cand, xw), beyond)
        oob = z3.And(start < size, z3.Or(start < 0, size > n))
        return index + nr <= size, index, oob

    def pcpu_alloc_area_search(self, chunk: SymChunk, bit_size: Int, align: Int, start: Int) -> tuple[Bool, Int, Bool]:
        """PATCH 09: search the whole bitmap from ``start``."""
        return self.bitmap_find_next_zero_area(chunk, I(self.n), start, bit_size, align)

    def pcpu_alloc_area(self, chunk: SymChunk, bit_size: Int, align: Int, start: Int) -> tuple[SymChunk, Bool, Int]:
        """PATCH 09 ``pcpu_alloc_area``: (state, allocated, bit_off)."""
        oslot = self.pcpu_chunk_slot(chunk)
        found, bit_off, oob = self.pcpu_alloc_area_search(chunk, bit_size, align, start)
        failed = self.oob(chunk, oob)

        amap, o1 = self.alloc_bits(chunk).with_range(bit_off, bit_size, True)
        # update boundary map: set_bit, bitmap_clear, set_bit
        bound = Bits(chunk.bound_map, self.n + 1)
        bmap = chunk.bound_map | one_bit(bit_off, self.n + 1)
        bmap, o2 = Bits(bmap, self.n + 1).with_range(bit_off + 1, bit_size - 1, False)
        end_bit = bit_off + bit_size
        bmap = bmap | one_bit(end_bit, self.n + 1)
        set_oob = z3.Or(bound._oob(bit_off, bit_off + 1), bound._oob(end_bit, end_bit + 1))
        chunk = self.oob(failed, z3.Or(o1, o2, set_oob), write=True).set(
            alloc_map=amap, bound_map=bmap, free_bits=chunk.free_bits - bit_size
        )

        chunk, update = self.pcpu_block_update_hint_alloc(chunk, bit_off, bit_size)
        chunk = self.pcpu_chunk_update_hint(chunk).merge(update, chunk)

        # update chunk first_free
        first: Int = chunk.first_free_block
        for k in reversed(range(self.N)):
            first = z3.If(z3.And(k >= chunk.first_free_block, chunk.md_blocks[k].contig_hint != 0), I(k), first)
        none_left = z3.And(*[z3.Or(k < chunk.first_free_block, chunk.md_blocks[k].contig_hint == 0) for k in range(self.N)])
        chunk = chunk.set(
            first_free_block=z3.If(
                chunk.first_free_block >= self.N, chunk.first_free_block, z3.If(none_left, I(self.N), first)
            )
        )
        chunk = self.pcpu_chunk_relocate(chunk, oslot)
        return chunk.merge(found, failed), found, bit_off

    def pcpu_free_area(self, chunk: SymChunk, bit_off: Int) -> SymChunk:
        """PATCH 09 ``pcpu_free_area`` of the allocation at ``bit_off`` (``off / PCPU_MIN_ALLOC_SIZE``)."""
        oslot = self.pcpu_chunk_slot(chunk)
        end, o1 = Bits(chunk.bound_map, self.n + 1).find_next_bit(I(self.n), bit_off + 1)
        bit_size = end - bit_off
        amap, o2 = self.alloc_bits(chunk).with_range(bit_off, bit_size, False)
        chunk = self.oob(self.oob(chunk, o1), o2, write=True).set(alloc_map=amap, free_bits=chunk.free_bits + bit_size)

        index = self.pcpu_off_to_block_index(bit_off)
        block = self.md(chunk, index)
        chunk = self.put(chunk, index, SymBlock(**{**vars(block), "first_free": smin(block.first_free, self.pcpu_off_to_block_off(bit_off))}))
        chunk = self.oob(chunk, self.md_oob(index), write=True)
        chunk = chunk.set(first_free_block=smin(chunk.first_free_block, index))

        chunk, update = self.pcpu_block_update_hint_free(chunk, bit_off, bit_size)
        chunk = self.pcpu_chunk_update_hint(chunk).merge(update, chunk)
        return self.pcpu_chunk_relocate(chunk, oslot)

    # -- the operations of a trace ------------------------------------------------------

    def alloc(self, chunk: SymChunk, bits: Int, align: Int, pop_only: Bool) -> SymStep:
        """What ``pcpu_alloc`` does with the one dynamic chunk (see ``PcpuAllocator.pcpu_alloc``)."""
        self.unrolled = []
        start = chunk.set(oob=z3.BoolVal(False), oob_write=z3.BoolVal(False))
        considered = z3.And(start.slot >= self.pcpu_size_to_slot(bits), bits <= start.contig_hint)
        fit, o = self.pcpu_find_block_fit(start, bits, align, pop_only)
        searched = self.oob(start, z3.And(considered, o))
        allocated, found, bit_off = self.pcpu_alloc_area(searched, bits, align, fit)
        ok = z3.And(considered, fit >= 0, found)

        off = bit_off * PCPU_MIN_ALLOC_SIZE
        populated = self.pcpu_alloc_populate(allocated, off, bits * PCPU_MIN_ALLOC_SIZE).merge(
            z3.Not(pop_only), allocated
        )
        gw = ghost_width(self.g)
        post = populated.set(
            g_start=populated.g_start | one_bit(bit_off, gw),
            g_used=populated.g_used | range_mask(bit_off, bit_off + bits, gw),
        )
        post = post.merge(ok, allocated.merge(z3.And(considered, fit >= 0), searched))
        return SymStep(post, z3.If(ok, bit_off, I(-1)), ok, z3.And(*self.unrolled) if self.unrolled else z3.BoolVal(True))

    def free(self, chunk: SymChunk, bit_off: Int) -> SymStep:
        """``free_percpu`` of the live allocation at ``bit_off``; the ghost forgets it."""
        start = chunk.set(oob=z3.BoolVal(False), oob_write=z3.BoolVal(False))
        post = self.pcpu_free_area(start, bit_off)
        gw = ghost_width(self.g)
        g_end = smin(Bits(chunk.g_start, gw).find_next_bit(I(gw), bit_off + 1)[0],
                     Bits(chunk.g_used, gw).find_next_zero_bit(I(gw), bit_off + 1)[0])
        post = post.set(
            g_start=post.g_start & ~one_bit(bit_off, gw),
            g_used=post.g_used & ~range_mask(bit_off, g_end, gw),
        )
        return SymStep(post, bit_off, z3.BoolVal(True), z3.BoolVal(True))

    def populate(self, chunk: SymChunk, page_start: Int, page_end: Int) -> SymStep:
        post = self.populate_range(chunk.set(oob=z3.BoolVal(False), oob_write=z3.BoolVal(False)), page_start, page_end)
        return SymStep(post, I(-1), z3.BoolVal(True), z3.BoolVal(True))

    def depopulate(self, chunk: SymChunk, page_start: Int, page_end: Int) -> SymStep:
        post = self.depopulate_range(chunk.set(oob=z3.BoolVal(False), oob_write=z3.BoolVal(False)), page_start, page_end)
        return SymStep(post, I(-1), z3.BoolVal(True), z3.BoolVal(True))


    def step(self, chunk: SymChunk, op: SymOp) -> SymStep:
        """The encoded transition of one operation."""
        if op.kind == "alloc":
            return self.alloc(chunk, op.bits, op.align, op.pop_only)
        if op.kind == "free":
            return self.free(chunk, op.bit_off)
        if op.kind == "populate":
            return self.populate(chunk, op.page_start, op.page_end)
        return self.depopulate(chunk, op.page_start, op.page_end)


class SymV1(SymPercpu):
    """Encoding of variant ``v1``: PATCH 10's two changes over ``SymPercpu``."""

    variant = "v1"

    def pcpu_find_block_fit(self, chunk: SymChunk, bit_size: Int, align: Int, pop_only: Bool) -> tuple[Int, Bool]:
        """PATCH 10: fail fast when the request can't fit the chunk's contig hint at its alignment."""
        block_off = ALIGN(chunk.contig_hint_start, align) - chunk.contig_hint_start
        off, oob = super().pcpu_find_block_fit(chunk, bit_size, align, pop_only)
        too_big = block_off + bit_size > chunk.contig_hint
        return z3.If(too_big, I(-1), off), z3.And(z3.Not(too_big), oob)

    def pcpu_alloc_area_search(self, chunk: SymChunk, bit_size: Int, align: Int, start: Int) -> tuple[Bool, Int, Bool]:
        """PATCH 10: the search window ends at ``start + bit_size + PCPU_BITMAP_BLOCK_SIZE``."""
        end = start + bit_size + self.B
        return self.bitmap_find_next_zero_area(chunk, end, start, bit_size, align)


class SymFixed(SymV1):
    """Encoding of variant ``fixed``: the overrides of ``model.variants.Fixed``, one for one."""

    variant = "fixed"

    def pcpu_is_populated(self, chunk: SymChunk, index: Int, block_off: Int, bit_size: Int) -> tuple[Bool, Int, Bool]:
        """Fix 1: page numbers from byte offsets, next_index in blocks."""
        off = index * self.B + block_off
        page_start = self.PFN_DOWN(off * PCPU_MIN_ALLOC_SIZE)
        page_end = self.PFN_UP((off + bit_size) * PCPU_MIN_ALLOC_SIZE)
        rs, re, oob = self.pcpu_next_unpop(chunk, page_start, page_end)
        return rs >= page_end, sdiv(re * self.PAGE_SIZE, self.B * PCPU_MIN_ALLOC_SIZE), oob

    def pcpu_alloc_area_search(self, chunk: SymChunk, bit_size: Int, align: Int, start: Int) -> tuple[Bool, Int, Bool]:
        """Fix 2: the search window stops at the end of the bitmap."""
        end = smin(start + bit_size + self.B, I(self.n))
        return self.bitmap_find_next_zero_area(chunk, end, start, bit_size, align)

    def pcpu_block_update_hint_alloc(self, chunk: SymChunk, bit_off: Int, bit_size: Int) -> tuple[SymChunk, Bool]:
        """Fixes 3 and 4: refresh when the area overlaps the chunk's hint or fills an empty page."""
        hint_start, hint_end = chunk.contig_hint_start, chunk.contig_hint_start + chunk.contig_hint
        s_index, e_index, _, _ = self._block_range(bit_off, bit_size)
        fills_empty_page = z3.Or(
            *[z3.And(s_index <= k, k <= e_index, chunk.md_blocks[k].contig_hint == self.B) for k in range(self.N)]
        )
        chunk, update = super().pcpu_block_update_hint_alloc(chunk, bit_off, bit_size)
        overlaps_hint = z3.And(bit_off < hint_end, hint_start < bit_off + bit_size)
        return chunk, z3.Or(update, overlaps_hint, fills_empty_page)

    def pcpu_free_refreshes_chunk(self, chunk: SymChunk, s_index: Int, e_index: Int, start: Int, end: Int) -> Bool:
        """Fix 5: also refresh when the freed run reaches into a neighbouring block's free bits."""
        left = z3.And(start == 0, self.md(chunk, s_index - 1).right_free > 0)
        right = z3.And(end == self.B, self.md(chunk, e_index + 1).left_free > 0)
        return z3.Or(super().pcpu_free_refreshes_chunk(chunk, s_index, e_index, start, end), left, right)

    def pcpu_alloc_populate(self, chunk: SymChunk, off: Int, size: Int) -> SymChunk:
        """Fix 6: pages populated for an allocation are not counted as empty."""
        return self.populate_range(chunk, self.PFN_DOWN(off), self.PFN_UP(off + size), for_alloc=True)


