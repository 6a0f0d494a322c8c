"""The Z3 encoding of ``linux-5.4`` (model/linux_5_4.py), which ``mainline`` shares, over ``SymChunk54``.

One builder per function of the model, in the model's order and under its
names; each cites the release and the 5.2 commit its model function cites.
The conventions are ``encode.py``'s: a C ``if`` is a merge of both
branches, a loop is unrolled to a bound with ``unrolled`` recording that
the bound sufficed, a block pointer is re-read after a write.  Offsets stay
in bits, slots in bytes (``size`` arguments are bytes, as in 4.14 on).

Loops and their bounds: ``pcpu_block_refresh_hint`` visits at most
``ceil(B / 2)`` free runs of a block; ``pcpu_find_zero_area`` fails at most
``nr_bits / 2`` times (each failure moves past a clear and a set bit);
``pcpu_for_each_md_free_region`` is one pass over the blocks (each block
yields at most its carried run and its contig hint, the last a trailing
run); ``pcpu_find_block_fit``'s iterator visits a block per round, the
``pop_only`` restarts included, for ``3 * nr_blocks + 2`` rounds.  The
proofs check each bound (their sanity query), conformance checks the rest.

Bitmap accesses out of bounds: every md_blocks index and population scan
records ``oob`` as ``model/bitmap.py`` logs it; scans of one block's bits
read the block's segment, whose only way out of bounds is its index (logged
with the block pointer, a write, as ``MdBlocks`` does).

Over 600 lines: one builder per function of ``model/linux_5_4.py``, kept in one file so that it reads
beside the model and the release's mm/percpu.c.
"""

from __future__ import annotations

import z3

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.linux_5_4 import PcpuChunk54
from pcpuverify.symbolic.bv import (
    ALIGN,
    Bits,
    Bool,
    I,
    Int,
    bit,
    ite,
    lowest_set,
    one_bit,
    range_mask,
    smax,
    smin,
    to_amount,
)
from pcpuverify.symbolic.encode import SymPercpu, SymStep
from pcpuverify.symbolic.release_state import SymBlockMd, SymChunk54, fresh_chunk54, well_formed54
from pcpuverify.symbolic.state import ghost_width


def pcpu_region_overlap(a: Int, b: Int, x: Int, y: Int) -> Bool:
    """``pcpu_region_overlap`` ("percpu: introduce helper to determine if two regions overlap", 5.2)."""
    return z3.And(a < y, x < b)


def ffs0(x: Int) -> Int:
    """``__ffs(x)`` (meaningful for x != 0, where the C calls it)."""
    return lowest_set(x, x.size())


class SymLinux54(SymPercpu):
    """Encoding of variant ``linux-5.4``: mm/percpu.c of v5.4.286, the scan_hint allocator."""

    variant = "linux-5.4"
    chunk_layout: type = PcpuChunk54
    PCPU_SLOT_BASE_SHIFT = 5  # 4.14 on: slots are computed in bytes
    PCPU_SLOT_FAIL_THRESHOLD = 3
    # 5.2's pcpu_block_md (scan_hint) has no block contracts yet: no blockB / NxblockB rows (Subject.proves_blocks)
    block_contracts = False

    def __init__(self, geometry: Geometry, max_bits: int | None = None) -> None:
        super().__init__(geometry, max_bits)
        self.log_B = self.B.bit_length() - 1
        self.pcpu_unit_size = self.N * self.PAGE_SIZE
        self.pcpu_nr_slots = self._pcpu_size_to_slot_int(self.pcpu_unit_size) + 2

    # -- the state this encoding works on ---------------------------------------------

    def fresh_chunk(self, prefix: str) -> SymChunk54:  # type: ignore[override]
        return fresh_chunk54(self.g, prefix)

    def well_formed(self, chunk: SymChunk54) -> z3.BoolRef:  # type: ignore[override]
        return well_formed54(chunk)

    def pcpu_alloc_chunk(self) -> SymChunk54:  # type: ignore[override]
        """5.4 ``pcpu_alloc_chunk``: zeroed memory, ``pcpu_init_md_blocks``, ``free_bytes``; no page populated."""
        g = self.g
        gw = ghost_width(g)
        chunk = SymChunk54(
            geometry=g,
            alloc_map=z3.BitVecVal(0, self.n),
            bound_map=z3.BitVecVal(0, self.n + 1),
            populated=z3.BitVecVal(0, self.N),
            md_blocks=tuple(SymBlockMd.zero() for _ in range(self.N)),
            chunk_md=SymBlockMd.zero(),
            free_bytes=I(0),
            nr_populated=I(0),
            nr_empty_pop_pages=I(0),
            slot=I(-1),
            pcpu_nr_empty_pop_pages=I(0),
            g_start=z3.BitVecVal(0, gw),
            g_used=z3.BitVecVal(0, gw),
            oob=z3.BoolVal(False),
            oob_write=z3.BoolVal(False),
        )
        chunk = self.pcpu_init_md_blocks(chunk)
        return chunk.set(free_bytes=I(self.N * self.PAGE_SIZE))

    # -- md_blocks[] and a block's bits ------------------------------------------------

    def md(self, chunk: SymChunk54, index: Int | int) -> SymBlockMd:  # type: ignore[override]
        """``chunk->md_blocks[index]``; zeros past the array (the model's scratch block)."""
        if isinstance(index, int):
            return chunk.md_blocks[index]
        block = SymBlockMd.zero()
        for k in range(self.N):
            block = chunk.md_blocks[k].merge(index == k, block)
        return block

    def block_bits(self, chunk: SymChunk54, index: Int | int) -> Bits:
        """``pcpu_index_alloc_map(chunk, index)`` scanned up to ``PCPU_BITMAP_BLOCK_BITS``: the block's segment."""
        B = self.B
        if isinstance(index, int):
            return Bits(z3.Extract((index + 1) * B - 1, index * B, chunk.alloc_map), B)
        seg = z3.Extract(B - 1, 0, z3.LShR(z3.ZeroExt(B, chunk.alloc_map), to_amount(index * B, self.n + B)))
        return Bits(seg, B)

    def touch(self, chunk: SymChunk54, index: Int, when: Bool | bool = True) -> SymChunk54:
        """A block pointer ``chunk->md_blocks + index`` used under ``when``: past the array it is written through."""
        return self.oob(chunk, z3.And(when, self.md_oob(index)), write=True)  # type: ignore[arg-type]

    # -- slots ("percpu: manage chunks based on contig_bits instead of free_bytes") -------

    def _pcpu_size_to_slot_int(self, size: int) -> int:
        return max(size.bit_length() - self.PCPU_SLOT_BASE_SHIFT + 2, 1)

    def _pcpu_size_to_slot(self, size: Int) -> Int:
        """``__pcpu_size_to_slot`` in bytes (4.14 on)."""
        return smax(self.fls(size) - self.PCPU_SLOT_BASE_SHIFT + 2, I(1))

    def pcpu_size_to_slot(self, size: Int) -> Int:
        return z3.If(size == self.pcpu_unit_size, I(self.pcpu_nr_slots - 1), self._pcpu_size_to_slot(size))

    def pcpu_chunk_slot(self, chunk: SymChunk54) -> Int:  # type: ignore[override]
        """5.2: the slot of ``chunk_md.contig_hint`` in bytes, 0 when nothing fits."""
        md = chunk.chunk_md
        return z3.If(z3.Or(chunk.free_bytes < PCPU_MIN_ALLOC_SIZE, md.contig_hint == 0), I(0),
                     self.pcpu_size_to_slot(md.contig_hint * PCPU_MIN_ALLOC_SIZE))

    def pcpu_chunk_move(self, chunk: SymChunk54, slot: int) -> SymChunk54:
        """``pcpu_chunk_move``: the slot only (one chunk, never the reserved one)."""
        return chunk.set(slot=I(slot))

    def pcpu_chunk_relocate(self, chunk: SymChunk54, oslot: Int) -> SymChunk54:  # type: ignore[override]
        nslot = self.pcpu_chunk_slot(chunk)
        return chunk.set(slot=z3.If(oslot != nslot, nslot, chunk.slot))

    # -- empty pages and hints ----------------------------------------------------------

    def pcpu_update_empty_pages(self, chunk: SymChunk54, nr: Int) -> SymChunk54:
        """``pcpu_update_empty_pages``: "based on the premise a md_block covers a page"."""
        return chunk.set(nr_empty_pop_pages=chunk.nr_empty_pop_pages + nr,
                         pcpu_nr_empty_pop_pages=chunk.pcpu_nr_empty_pop_pages + nr)

    def pcpu_next_hint(self, block: SymBlockMd, alloc_bits: Int) -> Int:
        """``pcpu_next_hint`` ("percpu: use block scan_hint to only scan forward")."""
        skip = z3.And(block.scan_hint != 0, block.contig_hint_start > block.scan_hint_start,
                      alloc_bits > block.scan_hint)
        return z3.If(skip, block.scan_hint_start + block.scan_hint, block.first_free)

    def pcpu_block_update(self, block: SymBlockMd, start: Int, end: Int) -> SymBlockMd:
        """5.4 ``pcpu_block_update`` ("percpu: add block level scan_hint", "percpu: make pcpu_block_md generic")."""
        contig = end - start
        sh, shs, ch, chs = block.scan_hint, block.scan_hint_start, block.contig_hint, block.contig_hint_start
        first_free = smin(block.first_free, start)
        left_free = z3.If(start == 0, contig, block.left_free)
        right_free = z3.If(end == block.nr_bits, contig, block.right_free)

        # contig > contig_hint: promote the old contig_hint to be the new scan_hint
        after = start > chs
        promote = z3.And(after, ch > sh)
        drop = z3.Or(z3.Not(after), z3.And(z3.Not(promote), start < shs))
        gt_sh = z3.If(promote, ch, z3.If(drop, I(0), sh))
        gt_shs = z3.If(promote, chs, shs)

        # contig == contig_hint
        better = z3.And(chs != 0, z3.Or(start == 0, ffs0(start) > ffs0(chs)))
        farther = z3.And(z3.Not(better), z3.Or(start > shs, ch > sh))
        eq_sh = z3.If(better, z3.If(z3.And(start < shs, ch > sh), I(0), sh), z3.If(farther, contig, sh))
        eq_shs = z3.If(farther, start, shs)
        eq_chs = z3.If(better, start, chs)

        # smaller than the contig_hint: the scan_hint only if larger or equal and farther
        take = z3.And(start < chs, z3.Or(contig > sh, z3.And(contig == sh, start > shs)))
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

    def pcpu_block_update_scan(self, chunk: SymChunk54, bit_off: Int, bits: Int, when: Bool) -> SymChunk54:
        """``pcpu_block_update_scan`` ("percpu: remember largest area skipped during allocation"), under ``when``."""
        s_off = self.pcpu_off_to_block_off(bit_off)
        e_off = s_off + bits
        go = z3.And(when, e_off <= self.B)
        s_index = self.pcpu_off_to_block_index(bit_off)
        chunk = self.touch(chunk, s_index, go)
        block = self.md(chunk, s_index)
        # scan backwards in case of alignment skipping free bits
        l_bit, _ = self.block_bits(chunk, s_index).find_last_bit(s_off)
        start = z3.If(s_off == l_bit, I(0), l_bit + 1)
        return self.put(chunk, s_index, self.pcpu_block_update(block, start, e_off), go)  # type: ignore[return-value]

    def pcpu_md_free_regions(self, chunk: SymChunk54, bit_off: Int, md: SymBlockMd) -> SymBlockMd:
        """``pcpu_for_each_md_free_region(chunk, bit_off, bits)`` from ``bit_off``, each region fed to
        ``pcpu_block_update(md, ...)``: 4.14's ``pcpu_next_md_free_region`` ("percpu: fix iteration to prevent
        skipping over block"), one pass over the blocks (see the module docstring)."""
        B = self.B
        s_index, s_off = self.pcpu_off_to_block_index(bit_off), self.pcpu_off_to_block_off(bit_off)
        carry, carry_start = I(0), I(0)
        for k in range(self.N):
            block = chunk.md_blocks[k]
            active = z3.And(bit_off >= 0, s_index <= k)
            # the area carried from the blocks before
            has = z3.And(active, carry != 0)
            total = carry + block.left_free
            whole = z3.And(has, block.left_free == B)
            emit_carry = z3.And(has, block.left_free != B)
            md = self.pcpu_block_update(md, carry_start, carry_start + total).merge(emit_carry, md)
            block_off = z3.If(emit_carry, block.left_free + 1, z3.If(s_index == k, s_off, I(0)))
            # the block's contig hint, unless the next region starts past this block
            here = z3.And(active, z3.Not(whole), block_off < B)
            hint = z3.And(here, block.contig_hint != 0, block.contig_hint_start >= block_off,
                          block.contig_hint + block.contig_hint_start < B)
            md = self.pcpu_block_update(md, k * B + block.contig_hint_start,
                                        k * B + block.contig_hint_start + block.contig_hint).merge(hint, md)
            # the right free area starts the next carry
            right = z3.And(here, z3.Or(z3.Not(hint), block.contig_hint_start + block.contig_hint + 1 < B))
            carry_start = z3.If(right, I((k + 1) * B) - block.right_free, carry_start)
            carry = z3.If(whole, total, z3.If(right, block.right_free, I(0)))
        return self.pcpu_block_update(md, carry_start, carry_start + carry).merge(carry != 0, md)

    def pcpu_chunk_refresh_hint(self, chunk: SymChunk54, full_scan: Bool | bool) -> SymChunk54:
        """5.4 ``pcpu_chunk_refresh_hint(chunk, full_scan)`` ("percpu: use chunk scan_hint to skip some scanning")."""
        md = chunk.chunk_md
        promote = z3.And(z3.Not(full_scan) if not isinstance(full_scan, bool) else not full_scan, md.scan_hint != 0)
        bit_off = z3.If(promote, md.scan_hint_start + md.scan_hint, md.first_free)
        md = md.set(
            contig_hint_start=z3.If(promote, md.scan_hint_start, md.contig_hint_start),
            contig_hint=z3.If(promote, md.scan_hint, I(0)),
            scan_hint=z3.If(promote, I(0), md.scan_hint),
        )
        return chunk.set(chunk_md=self.pcpu_md_free_regions(chunk, bit_off, md))

    def pcpu_block_refresh_hint(self, chunk: SymChunk54, index: Int | int) -> SymChunk54:  # type: ignore[override]
        """5.4 ``pcpu_block_refresh_hint``: rescan the block forward from its scan_hint, else ``first_free``."""
        block = self.md(chunk, index)
        promote = block.scan_hint != 0
        start = z3.If(promote, block.scan_hint_start + block.scan_hint, block.first_free)
        block = block.set(
            contig_hint_start=z3.If(promote, block.scan_hint_start, block.contig_hint_start),
            contig_hint=z3.If(promote, block.scan_hint, I(0)),
            scan_hint=I(0),
        )
        block = block.set(right_free=self.refreshed_right_free(block, start))
        return self.put(self.touch(chunk, index) if not isinstance(index, int) else chunk, index,
                        self.pcpu_block_free_runs(self.block_bits(chunk, index), start, block))  # type: ignore[return-value]

    def refreshed_right_free(self, block: SymBlockMd, start: Int) -> Int:
        """``block->right_free = 0`` before the rescan, ``block`` with its scan_hint promoted (``mainline-fixed``
        changes this one statement)."""
        return I(0)

    def pcpu_block_free_runs(self, view: Bits, start: Int, block: SymBlockMd) -> SymBlockMd:
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

    def pcpu_block_update_hint_alloc(self, chunk: SymChunk54, bit_off: Int, bits: Int) -> SymChunk54:  # type: ignore[override]
        """5.4 ``pcpu_block_update_hint_alloc`` (``pcpu_region_overlap``, empty pages by block, ``chunk_md``)."""
        B = self.B
        s_index = self.pcpu_off_to_block_index(bit_off)
        e_index = self.pcpu_off_to_block_index(bit_off + bits - 1)
        s_off = self.pcpu_off_to_block_off(bit_off)
        e_off = self.pcpu_off_to_block_off(bit_off + bits - 1) + 1
        chunk = self.touch(self.touch(chunk, s_index), e_index)
        same = s_index == e_index

        # Update s_block.
        s_block = self.md(chunk, s_index)
        nr_empty = z3.If(s_block.contig_hint == B, I(1), I(0))
        ff, _ = self.block_bits(chunk, s_index).find_next_zero_bit(I(B), s_off + bits)
        s_block = s_block.set(first_free=z3.If(s_off == s_block.first_free, ff, s_block.first_free))
        s_block = s_block.set(scan_hint=z3.If(pcpu_region_overlap(
            s_block.scan_hint_start, s_block.scan_hint_start + s_block.scan_hint, s_off, s_off + bits),
            I(0), s_block.scan_hint))
        broken = pcpu_region_overlap(s_block.contig_hint_start, s_block.contig_hint_start + s_block.contig_hint,
                                     s_off, s_off + bits)
        rescan = self.pcpu_block_refresh_hint(self.put(chunk, s_index, s_block.set(  # type: ignore[arg-type]
            left_free=z3.If(s_off == 0, I(0), s_block.left_free))), s_index)
        manual = self.put(chunk, s_index, s_block.set(
            left_free=smin(s_block.left_free, s_off),
            right_free=z3.If(same, smin(s_block.right_free, B - e_off), I(0)),
        ))
        chunk = rescan.merge(broken, manual)  # type: ignore[arg-type]

        # Update e_block.
        apart = z3.Not(same)
        e_block = self.md(chunk, e_index)
        nr_empty = nr_empty + z3.If(z3.And(apart, e_block.contig_hint == B), I(1), I(0))
        ff, _ = self.block_bits(chunk, e_index).find_next_zero_bit(I(B), e_off)
        e_block = e_block.set(first_free=ff)
        inner = e_off != B
        e_block = e_block.set(
            scan_hint=z3.If(z3.And(inner, e_off > e_block.scan_hint_start), I(0), e_block.scan_hint),
            left_free=z3.If(inner, I(0), e_block.left_free),
        )
        e_broken = z3.And(inner, e_off > e_block.contig_hint_start)
        e_written = self.put(chunk, e_index, e_block)
        e_rescan = self.pcpu_block_refresh_hint(e_written, e_index)
        e_manual = self.put(chunk, e_index, e_block.set(right_free=z3.If(
            inner, smin(e_block.right_free, B - e_off), e_block.right_free)))
        chunk = e_rescan.merge(e_broken, e_manual).merge(apart, chunk)  # type: ignore[arg-type]

        # update in-between md_blocks (through e_block itself when the area ends it)
        e_end = z3.If(inner, e_index, e_index + 1)
        nr_empty = nr_empty + z3.If(apart, e_index - s_index - 1, I(0))
        for k in range(self.N):
            b = chunk.md_blocks[k]
            cleared = b.set(scan_hint=I(0), contig_hint=I(0), left_free=I(0), right_free=I(0))
            chunk = self.put(chunk, k, cleared, z3.And(apart, s_index + 1 <= k, k < e_end))  # type: ignore[assignment]

        chunk = self.pcpu_update_empty_pages(chunk, -nr_empty)

        md = chunk.chunk_md
        chunk = chunk.set(chunk_md=md.set(scan_hint=z3.If(pcpu_region_overlap(
            md.scan_hint_start, md.scan_hint_start + md.scan_hint, bit_off, bit_off + bits), I(0), md.scan_hint)))
        # a full chunk scan is required only if the chunk contig hint is broken
        md = chunk.chunk_md
        chunk_broken = pcpu_region_overlap(md.contig_hint_start, md.contig_hint_start + md.contig_hint,
                                           bit_off, bit_off + bits)
        return self.pcpu_alloc_refresh_chunk(chunk).merge(chunk_broken, chunk)

    def pcpu_alloc_refresh_chunk(self, chunk: SymChunk54) -> SymChunk54:
        """The model's ``Linux54.pcpu_alloc_refresh_chunk``: ``pcpu_chunk_refresh_hint(chunk, false)``."""
        return self.pcpu_chunk_refresh_hint(chunk, False)

    def pcpu_block_update_hint_free(self, chunk: SymChunk54, bit_off: Int, bits: Int) -> SymChunk54:  # type: ignore[override]
        """5.4 ``pcpu_block_update_hint_free``: "chunk_md->contig_hint may be off by up to a page ..."."""
        B = self.B
        s_index = self.pcpu_off_to_block_index(bit_off)
        e_index = self.pcpu_off_to_block_index(bit_off + bits - 1)
        s_off = self.pcpu_off_to_block_off(bit_off)
        e_off = self.pcpu_off_to_block_off(bit_off + bits - 1) + 1
        chunk = self.touch(self.touch(chunk, s_index), e_index)
        same = s_index == e_index
        s_block, e_block = self.md(chunk, s_index), self.md(chunk, e_index)

        # the free area's start and end within their blocks, skipping the scan at a contig hint
        l_bit, _ = self.block_bits(chunk, s_index).find_last_bit(s_off)
        start = z3.If(s_off == s_block.contig_hint + s_block.contig_hint_start, s_block.contig_hint_start,
                      z3.If(s_off == l_bit, I(0), l_bit + 1))
        nb, _ = self.block_bits(chunk, e_index).find_next_bit(I(B), e_off)
        end = z3.If(e_off == e_block.contig_hint_start, e_block.contig_hint_start + e_block.contig_hint, nb)

        # update s_block
        s_end = z3.If(same, end, I(B))
        nr_empty = z3.If(z3.And(start == 0, s_end == B), I(1), I(0))
        chunk = self.put(chunk, s_index, self.pcpu_block_update(s_block, start, s_end))  # type: ignore[assignment]

        # update e_block, reset md_blocks in the middle
        apart = z3.Not(same)
        nr_empty = nr_empty + z3.If(z3.And(apart, end == B), I(1), I(0))
        e_new = self.pcpu_block_update(self.md(chunk, e_index), I(0), end)
        chunk = self.put(chunk, e_index, e_new, apart)  # type: ignore[assignment]
        nr_empty = nr_empty + z3.If(apart, e_index - s_index - 1, I(0))
        for k in range(self.N):
            free = chunk.md_blocks[k].set(first_free=I(0), scan_hint=I(0), contig_hint_start=I(0),
                                          contig_hint=I(B), left_free=I(B), right_free=I(B))
            chunk = self.put(chunk, k, free, z3.And(apart, s_index + 1 <= k, k < e_index))  # type: ignore[assignment]

        chunk = self.pcpu_update_empty_pages(chunk, nr_empty)

        # refresh when the free makes a block free or spans blocks
        return self.pcpu_chunk_refresh_hint(chunk, True).merge(
            self.pcpu_free_refreshes_chunk(chunk, s_index, e_index, start, end),
            self.pcpu_free_update_chunk_md(chunk, s_index, start, end))

    def pcpu_free_refreshes_chunk(self, chunk: SymChunk54, s_index: Int, e_index: Int, start: Int, end: Int) -> z3.BoolRef:
        """The model's ``pcpu_free_refreshes_chunk``: the free makes a block free, or spans blocks."""
        return z3.Or(end - start >= self.B, s_index != e_index)

    def pcpu_free_update_chunk_md(self, chunk: SymChunk54, s_index: Int, start: Int, end: Int) -> SymChunk54:
        """The last ``else`` of 5.4's ``pcpu_block_update_hint_free``: ``end`` passed block relative, as the C does."""
        return chunk.set(chunk_md=self.pcpu_block_update(chunk.chunk_md, s_index * self.B + start, end))

    # -- allocation path ----------------------------------------------------------------

    def pcpu_is_populated(self, chunk: SymChunk54, bit_off: Int, bits: Int) -> tuple[Bool, Int, Bool]:  # type: ignore[override]
        """4.14 ``pcpu_is_populated(chunk, bit_off, bits, &next_off)`` in bits: (populated, next_off, oob)."""
        page_start = bit_off >> self.log_B
        page_end = (bit_off + bits + self.B - 1) >> self.log_B
        rs, re, oob = self.pcpu_next_unpop(chunk, page_start, page_end)  # type: ignore[arg-type]
        return rs >= page_end, re * self.B, oob

    def pcpu_find_block_fit(self, chunk: SymChunk54, alloc_bits: Int, align: Int, pop_only: Bool) -> tuple[Int, Bool]:  # type: ignore[override]
        """5.4 ``pcpu_find_block_fit``: the contig check on ``chunk_md``, then 4.14's ``pcpu_next_fit_region``
        iterator from ``pcpu_next_hint`` ("percpu: use block scan_hint to only scan forward"), a block per round.

        Returns (bit offset or -1, oob).
        """
        B, N, n = self.B, self.N, self.n
        md = chunk.chunk_md
        too_big = ALIGN(md.contig_hint_start, align) - md.contig_hint_start + alloc_bits > md.contig_hint

        start = self.pcpu_next_hint(md, alloc_bits)
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
            hint_start = self.pcpu_next_hint(block, alloc_bits)
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

    def pcpu_find_zero_area(self, chunk: SymChunk54, size: Int, start: Int, nr: Int, align: Int
                            ) -> tuple[Int, Int, Int, Bool]:
        """``pcpu_find_zero_area``: ``bitmap_find_next_zero_area_off`` remembering the largest area skipped.

        Returns (index, largest_off, largest_bits, oob); on failure ``index`` is past ``size``.
        """
        amap = self.alloc_bits(chunk)  # type: ignore[arg-type]
        mask = align - 1
        largest_off, largest_bits = I(0), I(0)
        done: Bool = z3.BoolVal(False)
        result: Int = I(0)
        oob: Bool = z3.BoolVal(False)
        for _ in range(min(self.n, self.max_bits + self.B) // 2 + 1):
            index, o1 = amap.find_next_zero_bit(size, start)
            index = (index + mask) & ~mask
            end = index + nr
            fail = end > size
            i, o2 = amap.find_next_bit(end, index)
            oob = z3.Or(oob, z3.And(z3.Not(done), o1), z3.And(z3.Not(done), z3.Not(fail), o2))
            skipped = z3.And(z3.Not(done), z3.Not(fail), i < end)
            area_bits = i - index
            better = z3.And(skipped, z3.Or(area_bits > largest_bits, z3.And(
                area_bits == largest_bits, largest_off != 0, z3.Or(index == 0, ffs0(index) > ffs0(largest_off)))))
            largest_off = z3.If(better, index, largest_off)
            largest_bits = z3.If(better, area_bits, largest_bits)
            settle = z3.And(z3.Not(done), z3.Not(skipped))
            result = z3.If(settle, z3.If(fail, end, index), result)
            done = z3.Or(done, settle)
            start = z3.If(skipped, i + 1, start)
        self.unrolled.append(done)
        return result, largest_off, largest_bits, oob

    def pcpu_alloc_area(self, chunk: SymChunk54, alloc_bits: Int, align: Int, start: Int  # type: ignore[override]
                        ) -> tuple[SymChunk54, Bool, Int]:
        """5.4 ``pcpu_alloc_area`` ("percpu: do not search past bitmap when allocating an area"): (state, found, bit_off)."""
        n = self.n
        oslot = self.pcpu_chunk_slot(chunk)
        end = smin(start + alloc_bits + self.B, I(n))
        bit_off, area_off, area_bits, oob = self.pcpu_find_zero_area(chunk, end, start, alloc_bits, align)
        failed = self.oob(chunk, oob)
        found = bit_off < end

        chunk = self.pcpu_block_update_scan(failed, area_off, area_bits, area_bits != 0)  # type: ignore[arg-type]

        # update alloc map and boundary map
        amap, o1 = self.alloc_bits(chunk).with_range(bit_off, alloc_bits, True)  # type: ignore[arg-type]
        bound = Bits(chunk.bound_map, n + 1)
        bmap = chunk.bound_map | one_bit(bit_off, n + 1)
        bmap, o2 = Bits(bmap, n + 1).with_range(bit_off + 1, alloc_bits - 1, False)
        end_bit = bit_off + alloc_bits
        bmap = bmap | one_bit(end_bit, n + 1)
        set_oob = z3.Or(bound._oob(bit_off, bit_off + 1), bound._oob(end_bit, end_bit + 1))
        chunk = self.oob(chunk, z3.Or(o1, o2, set_oob), write=True).set(  # type: ignore[assignment]
            alloc_map=amap, bound_map=bmap, free_bytes=chunk.free_bytes - alloc_bits * PCPU_MIN_ALLOC_SIZE)

        # update first free bit
        md = chunk.chunk_md
        ff, o3 = Bits(chunk.alloc_map, n).find_next_zero_bit(I(n), bit_off + alloc_bits)
        takes_first = bit_off == md.first_free
        chunk = self.oob(chunk, z3.And(takes_first, o3)).set(  # type: ignore[assignment]
            chunk_md=md.set(first_free=z3.If(takes_first, ff, md.first_free)))

        chunk = self.pcpu_block_update_hint_alloc(chunk, bit_off, alloc_bits)
        chunk = self.pcpu_chunk_relocate(chunk, oslot)
        return chunk.merge(found, failed), found, bit_off

    def pcpu_free_area(self, chunk: SymChunk54, bit_off: Int) -> SymChunk54:  # type: ignore[override]
        """5.4 ``pcpu_free_area`` of the allocation at ``bit_off``; ``chunk_md.first_free`` for ``first_bit``."""
        n = self.n
        oslot = self.pcpu_chunk_slot(chunk)
        end, o1 = Bits(chunk.bound_map, n + 1).find_next_bit(I(n), bit_off + 1)
        bits = end - bit_off
        amap, o2 = self.alloc_bits(chunk).with_range(bit_off, bits, False)  # type: ignore[arg-type]
        chunk = self.oob(self.oob(chunk, o1), o2, write=True).set(  # type: ignore[assignment]
            alloc_map=amap, free_bytes=chunk.free_bytes + bits * PCPU_MIN_ALLOC_SIZE)
        md = chunk.chunk_md
        chunk = chunk.set(chunk_md=md.set(first_free=smin(md.first_free, bit_off)))
        chunk = self.pcpu_block_update_hint_free(chunk, bit_off, bits)
        return self.pcpu_chunk_relocate(chunk, oslot)

    # -- chunk creation ---------------------------------------------------------------------

    def pcpu_init_md_block(self, block: SymBlockMd, nr_bits: int) -> SymBlockMd:
        """``pcpu_init_md_block`` ("percpu: make pcpu_block_md generic"): a wholly free block of ``nr_bits``."""
        return block.set(scan_hint=I(0), contig_hint=I(nr_bits), left_free=I(nr_bits), right_free=I(nr_bits),
                         first_free=I(0), nr_bits=I(nr_bits))

    def pcpu_init_md_blocks(self, chunk: SymChunk54) -> SymChunk54:
        return chunk.set(chunk_md=self.pcpu_init_md_block(chunk.chunk_md, self.n),
                         md_blocks=tuple(self.pcpu_init_md_block(b, self.B) for b in chunk.md_blocks))

    # -- pcpu_alloc() for one chunk ---------------------------------------------------------

    def alloc(self, chunk: SymChunk54, bits: Int, align: Int, pop_only: Bool) -> SymStep:  # type: ignore[override]
        """What 5.4's ``pcpu_alloc`` does with the one dynamic chunk (``Linux54.pcpu_alloc``, "percpu: relegate
        chunks unusable when failing small allocations"), then the ghost records the area."""
        self.unrolled = []
        start = chunk.set(oob=z3.BoolVal(False), oob_write=z3.BoolVal(False))
        size = bits * PCPU_MIN_ALLOC_SIZE
        considered = start.slot >= self.pcpu_size_to_slot(size)
        fit, o = self.pcpu_find_block_fit(start, bits, align, pop_only)
        searched = self.oob(start, z3.And(considered, o))
        no_fit = z3.And(considered, fit < 0)
        relegated = searched.set(slot=z3.If(start.slot < self.PCPU_SLOT_FAIL_THRESHOLD, I(0), start.slot))
        allocated, found, bit_off = self.pcpu_alloc_area(searched, bits, align, fit)  # type: ignore[arg-type]
        ok = z3.And(considered, fit >= 0, found)

        populated = self.pcpu_alloc_populate(allocated, bit_off * PCPU_MIN_ALLOC_SIZE, size).merge(  # type: ignore[arg-type]
            z3.Not(pop_only), allocated)
        gw = ghost_width(self.g)
        post = populated.set(
            g_start=populated.g_start | one_bit(bit_off, gw),
            g_used=populated.g_used | range_mask(bit_off, bit_off + bits, gw),
        )
        post = post.merge(ok, allocated.merge(z3.And(considered, fit >= 0), relegated.merge(no_fit, searched)))
        return SymStep(post, z3.If(ok, bit_off, I(-1)), ok,  # type: ignore[arg-type]
                       z3.And(*self.unrolled) if self.unrolled else z3.BoolVal(True))


class SymMainline(SymLinux54):
    """Encoding of variant ``mainline`` (7.1.3): ``linux-5.4``'s plus the slots and the free path's check."""

    variant = "mainline"

    def __init__(self, geometry: Geometry, max_bits: int | None = None) -> None:
        super().__init__(geometry, max_bits)
        # pcpu_setup_first_chunk, 7.1.3: the slot lists above the size slots
        self.pcpu_sidelined_slot = self._pcpu_size_to_slot_int(self.pcpu_unit_size) + 1
        self.pcpu_free_slot = self.pcpu_sidelined_slot + 1

    def pcpu_size_to_slot(self, size: Int) -> Int:
        """7.1.3: a wholly free chunk's slot is ``pcpu_free_slot`` ("percpu: use pcpu_free_slot instead of
        pcpu_nr_slots - 1")."""
        return z3.If(size == self.pcpu_unit_size, I(self.pcpu_free_slot), self._pcpu_size_to_slot(size))

    def pcpu_free_area(self, chunk: SymChunk54, bit_off: Int) -> SymChunk54:  # type: ignore[override]
        """7.1.3 ``pcpu_free_area``: as 5.4, but a free whose start is not allocated is refused ("check invalid free")."""
        n = self.n
        valid = z3.And(bit(chunk.alloc_map, bit_off, n), bit(chunk.bound_map, bit_off, n + 1))
        tested = self.oob(chunk, z3.Or(bit_off < 0, bit_off >= n))
        return super().pcpu_free_area(tested, bit_off).merge(valid, tested)
