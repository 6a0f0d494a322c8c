"""The Z3 encoding of ``linux-5.4`` (model/linux_5_4.py), which ``mainline`` shares, over ``SymChunk54``.

``SymLinux54`` derives from ``SymLinux414`` (encode_linux_4_14.py) as the
model's ``Linux54`` derives from ``Linux414``: this file has one builder per
function 5.2 changed, in the model's order and under its names, each citing
the release and the 5.2 commit its model function cites; the rest, and the
conventions, are 4.14's.

Loops and their bounds, besides 4.14's: ``pcpu_find_zero_area`` fails at
most ``nr_bits / 2`` times (each failure moves past a clear and a set bit).
"""

from __future__ import annotations

import z3

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.linux_5_4 import PcpuChunk54
from pcpuverify.symbolic.bv import Bool, I, Int, bit, smin
from pcpuverify.symbolic.encode_linux_4_14 import SymLinux414, ffs0
from pcpuverify.symbolic.release_state import SymBlockMd, SymChunk54, fresh_chunk54, well_formed54
from pcpuverify.symbolic.state import ghost_width


def pcpu_region_overlap(a: Int, b: Int, x: Int, y: Int) -> Bool:
    """``pcpu_region_overlap`` ("percpu: introduce helper to determine if two regions overlap", 5.2)."""
    return z3.And(a < y, x < b)


class SymLinux54(SymLinux414):
    """Encoding of variant ``linux-5.4``: mm/percpu.c of v5.4.286, the scan_hint allocator."""

    variant = "linux-5.4"
    chunk_layout: type = PcpuChunk54
    block_contracts: str | None = "5.2"  # blockB rows on 5.2's pcpu_block_md (proofs/blocks/release_contracts.py)
    PCPU_SLOT_FAIL_THRESHOLD = 3

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

    # -- what 5.2 moved into chunk_md ("percpu: convert chunk hints to be based on pcpu_block_md") ------

    def chunk_contig(self, chunk: SymChunk54) -> tuple[Int, Int]:  # type: ignore[override]
        return chunk.chunk_md.contig_hint, chunk.chunk_md.contig_hint_start

    def chunk_first_bit(self, chunk: SymChunk54) -> Int:  # type: ignore[override]
        return chunk.chunk_md.first_free

    def set_chunk_first_bit(self, chunk: SymChunk54, value: Int) -> SymChunk54:  # type: ignore[override]
        return chunk.set(chunk_md=chunk.chunk_md.set(first_free=value))

    # -- slots ("percpu: manage chunks based on contig_bits instead of free_bytes") -------

    def pcpu_chunk_slot(self, chunk: SymChunk54) -> Int:  # type: ignore[override]
        """5.2: the slot of ``chunk_md.contig_hint`` in bytes, 0 when nothing fits."""
        md = chunk.chunk_md
        return z3.If(z3.Or(chunk.free_bytes < PCPU_MIN_ALLOC_SIZE, md.contig_hint == 0), I(0),
                     self.pcpu_size_to_slot(md.contig_hint * PCPU_MIN_ALLOC_SIZE))

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

    def pcpu_next_fit_start(self, block: SymBlockMd, alloc_bits: Int) -> Int:  # type: ignore[override]
        """5.2: a block that fits is scanned from ``pcpu_next_hint`` ("percpu: use block scan_hint to only scan
        forward")."""
        return self.pcpu_next_hint(block, alloc_bits)

    def pcpu_fit_search_start(self, chunk: SymChunk54, alloc_bits: Int) -> Int:  # type: ignore[override]
        """5.2: ``pcpu_find_block_fit`` starts at ``pcpu_next_hint(chunk_md, alloc_bits)``."""
        return self.pcpu_next_hint(chunk.chunk_md, alloc_bits)

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
        # pcpu_for_each_md_free_region(chunk, bit_off, bits) pcpu_block_update(chunk_md, bit_off, bit_off + bits)
        for emitted, start, end in self.pcpu_md_free_regions(chunk, bit_off):
            md = self.pcpu_block_update(md, start, end).merge(emitted, md)
        return chunk.set(chunk_md=md)

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

    def pcpu_block_update_hint_alloc(self, chunk: SymChunk54, bit_off: Int, bits: Int) -> SymChunk54:  # type: ignore[override]
        """5.4 ``pcpu_block_update_hint_alloc`` (``pcpu_region_overlap``, empty pages by block, ``chunk_md``)."""
        B = self.B
        chunk, s_index, e_index, s_off, e_off = self.pcpu_area_blocks(chunk, bit_off, bits)
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
        chunk, s_index, e_index, s_off, e_off = self.pcpu_area_blocks(chunk, bit_off, bits)
        same = s_index == e_index
        s_block = self.md(chunk, s_index)
        # the free area's start and end within their blocks
        start, end = self.pcpu_freed_extent(chunk, s_index, e_index, s_off, e_off)

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
        chunk = self.pcpu_set_area(chunk, bit_off, alloc_bits)
        chunk = self.pcpu_block_update_hint_alloc(chunk, bit_off, alloc_bits)
        chunk = self.pcpu_chunk_relocate(chunk, oslot)
        return chunk.merge(found, failed), found, bit_off

    # -- chunk creation ---------------------------------------------------------------------

    def pcpu_init_md_block(self, block: SymBlockMd, nr_bits: int) -> SymBlockMd:
        """``pcpu_init_md_block`` ("percpu: make pcpu_block_md generic"): a wholly free block of ``nr_bits``."""
        return block.set(scan_hint=I(0), contig_hint=I(nr_bits), left_free=I(nr_bits), right_free=I(nr_bits),
                         first_free=I(0), nr_bits=I(nr_bits))

    def pcpu_init_md_blocks(self, chunk: SymChunk54) -> SymChunk54:
        return chunk.set(chunk_md=self.pcpu_init_md_block(chunk.chunk_md, self.n),
                         md_blocks=tuple(self.pcpu_init_md_block(b, self.B) for b in chunk.md_blocks))

    # -- pcpu_alloc() for one chunk ---------------------------------------------------------

    def pcpu_alloc_no_fit(self, searched: SymChunk54, start: SymChunk54) -> SymChunk54:  # type: ignore[override]
        """A chunk that fails ``pcpu_find_block_fit`` on a slot below ``PCPU_SLOT_FAIL_THRESHOLD`` moves to slot 0
        ("percpu: relegate chunks unusable when failing small allocations")."""
        return searched.set(slot=z3.If(start.slot < self.PCPU_SLOT_FAIL_THRESHOLD, I(0), start.slot))

    def pcpu_alloc_populate(self, chunk: SymChunk54, off: Int, size: Int) -> SymChunk54:  # type: ignore[override]
        """The ``if (!is_atomic)`` block of 5.4's ``pcpu_alloc``: ``pcpu_chunk_populated(chunk, rs, re)``, whose
        pages count as empty (5.4 has no ``for_alloc``)."""
        return self.populate_range(chunk, self.PFN_DOWN(off), self.PFN_UP(off + size))


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
