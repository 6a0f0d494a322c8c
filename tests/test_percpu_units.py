"""Hand-worked unit tests of each ported function of mm/percpu.c (PATCH 09/10) on small states.

Every expected value below was computed by hand from the C of PATCH 09
("percpu: replace area map allocator with bitmap allocator") and PATCH 10
("add optimizations on allocation path"), seed 000_85577c02b60da03b.txt --
not by running the model.  The comment above each assertion block is the
derivation, in the C's own variable names.  Geometry: PCPU_BITMAP_BLOCK_SIZE
B = 8 bits (PAGE_SIZE = 32 bytes), one block per page, 2 or 3 pages.

Bitmaps are written bit 0 first, one character per bit, a space between
blocks: ``bits("11100000 00000000")`` has bits 0, 1, 2 set.
"""

from __future__ import annotations

import pytest

from pcpuverify.model.bitmap import OutOfBounds
from pcpuverify.model.chunk import PcpuBitmapMd, PcpuChunk
from pcpuverify.model.first_chunk import LayoutError, check_layout, pcpu_align_reserved_region
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, FirstChunkInit, Free, Populate
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.model.reference import Reference

B = 8


def new(spec: str = "2x8", populated: tuple[int, ...] | None = None, variant: str = "v1-patch09"):
    """A fresh ``pcpu_alloc_chunk()`` chunk, linked in and populated as the geometry says."""
    ref = Reference(variant, Geometry.parse(spec, populated), ChunkInit())
    return ref, ref.alloc, ref.chunks["dynamic"]


def bits(drawing: str) -> int:
    """``"1100 0000"`` -> 0b0011: bit 0 first, spaces ignored."""
    return sum(1 << i for i, c in enumerate(drawing.replace(" ", "")) if c == "1")


def md(contig_hint: int, contig_hint_start: int, left_free: int, right_free: int, first_free: int) -> PcpuBitmapMd:
    return PcpuBitmapMd(contig_hint, contig_hint_start, left_free, right_free, first_free)


def set_md(chunk: PcpuChunk, index: int, block: PcpuBitmapMd) -> None:
    chunk.md_blocks.blocks[index] = block


FREE = md(B, 0, B, B, 0)  # pcpu_init_md_blocks: an entirely free block


# ---------------------------------------------------------------------------
# chunk creation and the starting state every other test builds on
# ---------------------------------------------------------------------------


def test_pcpu_alloc_chunk_and_population_at_creation() -> None:
    # pcpu_alloc_chunk: contig_hint = free_bits = map_size_bits = 2 * 8 = 16;
    # pcpu_init_md_blocks: every block {contig 8, left 8, right 8}, first_free 0
    # (zalloc).  pcpu_nr_slots = __pcpu_size_to_slot(16) + 2 = (fls(16)=5 - 3 + 2) + 2 = 6,
    # and relocate(-1) puts the empty chunk on the last slot, 5.  Populating
    # pages 0 and 1 one by one: nr_populated = nr_empty_pop_pages = 2, global 2.
    ref, alloc, chunk = new("2x8")
    assert (chunk.free_bits, chunk.contig_hint, chunk.contig_hint_start) == (16, 16, 0)
    assert list(chunk.md_blocks) == [FREE, FREE]
    assert chunk.first_free_block == 0
    assert alloc.pcpu_nr_slots == 6 and chunk.slot == 5
    assert chunk.populated.value == 0b11
    assert (chunk.nr_populated, chunk.nr_empty_pop_pages, alloc.pcpu_nr_empty_pop_pages) == (2, 2, 2)
    assert (chunk.alloc_map.nbits, chunk.bound_map.nbits) == (16, 17)  # bound_map: nr_bits + 1


# ---------------------------------------------------------------------------
# pcpu_block_refresh_hint
# ---------------------------------------------------------------------------


def test_block_refresh_hint_scans_from_first_free() -> None:
    # block 0 = 0011 0001 (bits 2, 3, 7 allocated), first_free 0; block 1 full
    # so that a view at the wrong offset would be caught.
    #   start 0: zero at 0, end = next set = 2, contig 2; start == 0 -> left_free 2;
    #            contig_hint 2 @ 0
    #   start 2: zero at 4, end 7, contig 3 > 2 -> contig_hint 3 @ 4
    #   start 7: no zero below 8 -> break.  No run ended at 8 -> right_free 0.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("0011 0001 1111 1111")
    set_md(chunk, 0, md(8, 0, 8, 8, 0))
    alloc.pcpu_block_refresh_hint(chunk, 0)
    assert chunk.md_blocks[0] == md(3, 4, 2, 0, 0)


def test_block_refresh_hint_starting_past_a_left_run_clears_left_free() -> None:
    # block 0 = 0011 0000, but first_free 4: the scan starts at 4 and never
    # sees the free bits 0-1.  start 4: zero at 4, end 8 -> contig 4, right_free 4,
    # contig_hint 4 @ 4.  No run started at 0 -> !is_left_free -> left_free = 0
    # (the stale 5 is cleared even though bits 0, 1 are free).
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("0011 0000 0000 0000")
    set_md(chunk, 0, md(1, 0, 5, 0, 4))
    alloc.pcpu_block_refresh_hint(chunk, 0)
    assert chunk.md_blocks[0] == md(4, 4, 0, 4, 4)


def test_block_refresh_hint_of_block_one_reads_its_own_bits() -> None:
    # block 1 = 1000 0011 (map bits 8, 14, 15), first_free 1; block 0 all free.
    # start 1: zero 1, end 6, contig 5 -> contig_hint 5 @ 1.  start 6: no zero -> break.
    # No run touches 0 or 8 -> left_free = right_free = 0.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("0000 0000 1000 0011")
    set_md(chunk, 1, md(8, 0, 8, 8, 1))
    alloc.pcpu_block_refresh_hint(chunk, 1)
    assert chunk.md_blocks[1] == md(5, 1, 0, 0, 1)
    assert chunk.md_blocks[0] == FREE


def test_block_refresh_hint_of_a_full_block_keeps_the_stale_start() -> None:
    # all bits set: the loop breaks at once; contig_hint = 0, left = right = 0.
    # contig_hint_start is never written, so the old 3 survives.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("1111 1111 0000 0000")
    set_md(chunk, 0, md(2, 3, 1, 1, 0))
    alloc.pcpu_block_refresh_hint(chunk, 0)
    assert chunk.md_blocks[0] == md(0, 3, 0, 0, 0)


# ---------------------------------------------------------------------------
# pcpu_block_update_hint_alloc (called after alloc_map has the new bits)
# ---------------------------------------------------------------------------


def test_update_hint_alloc_breaking_the_block_hint_refreshes() -> None:
    # alloc [0, 3) in a fresh 2x8 chunk.  s_index = e_index = 0, s_off 0, e_off 3.
    # s_off == first_free (0) -> first_free = find_next_zero_bit(map, 8, 3) = 3.
    # s_off in [contig_hint_start 0, 0 + 8) -> refresh from 3: run [3, 8) ->
    # contig 5 @ 3, right 5, left 0.  bit_off 0 in chunk hint [0, 16) -> true.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("1110 0000 0000 0000")
    assert alloc.pcpu_block_update_hint_alloc(chunk, 0, 3) is True
    assert chunk.md_blocks[0] == md(5, 3, 0, 5, 3)
    assert chunk.md_blocks[1] == FREE


def test_update_hint_alloc_outside_the_block_hint_updates_right_free_by_hand() -> None:
    # block 0 before: 0001 1000 -> runs [0,3) and [5,8): contig 3 @ 0, left 3, right 3,
    # first_free 0.  Allocate [6, 7): s_off 6, e_off 7.  s_off != first_free;
    # 6 not in [0, 3) -> manual: left = min(3, 6) = 3, right = min(3, 8 - 7) = 1.
    # Chunk hint set to 3 @ 0: bit_off 6 not in [0, 3) -> false.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("0001 1010 0000 0000")
    set_md(chunk, 0, md(3, 0, 3, 3, 0))
    chunk.contig_hint, chunk.contig_hint_start = 3, 0
    assert alloc.pcpu_block_update_hint_alloc(chunk, 6, 1) is False
    assert chunk.md_blocks[0] == md(3, 0, 3, 1, 0)


def test_update_hint_alloc_outside_the_block_hint_updates_left_free_by_hand() -> None:
    # block 0 before: 0001 0000 -> runs [0,3) and [4,8): contig 4 @ 4, left 3, right 4,
    # first_free 0.  Allocate [1, 2): s_off 1 != 0; 1 not in [4, 8) -> manual:
    # left = min(3, 1) = 1, right = min(4, 8 - 2) = 4.  The chunk hint
    # [contig_hint_start 8, 8 + 8) excludes bit 1 -> false.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("0101 0000 0000 0000")
    set_md(chunk, 0, md(4, 4, 3, 4, 0))
    chunk.contig_hint, chunk.contig_hint_start = 8, 8
    assert alloc.pcpu_block_update_hint_alloc(chunk, 1, 1) is False
    assert chunk.md_blocks[0] == md(4, 4, 1, 4, 0)


def test_update_hint_alloc_ending_on_a_block_boundary_stays_in_one_block() -> None:
    # alloc [4, 8): e_off = (4 + 4) & 7 = 0 -> e_off = 8, e_index = 1 - 1 = 0.
    # s_off 4 != first_free 0; 4 in [0, 8) -> refresh from 0: run [0,4) ->
    # left 4, contig 4 @ 0, right 0.  Block 1 untouched.  4 in [0, 16) -> true.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("0000 1111 0000 0000")
    assert alloc.pcpu_block_update_hint_alloc(chunk, 4, 4) is True
    assert chunk.md_blocks[0] == md(4, 0, 4, 0, 0)
    assert chunk.md_blocks[1] == FREE


def test_update_hint_alloc_of_a_whole_block() -> None:
    # alloc [0, 8): first_free = find_next_zero_bit(map, 8, 8) = 8 (offset >= size);
    # refresh starts at 8 -> no loop: contig 0, left 0, right 0; start keeps 0.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("1111 1111 0000 0000")
    assert alloc.pcpu_block_update_hint_alloc(chunk, 0, 8) is True
    assert chunk.md_blocks[0] == md(0, 0, 0, 0, 8)


def test_update_hint_alloc_across_two_blocks() -> None:
    # alloc [5, 13): s_index 0, e_index 13/8 = 1, s_off 5, e_off 5.
    # s_block: 5 != first_free 0; 5 in [0, 8) -> refresh from 0: run [0,5):
    #   left 5, contig 5 @ 0, right 0.
    # e_block: first_free = find_next_zero_bit(block 1, 8, 5) = 5; refresh from 5:
    #   run [5,8): contig 3 @ 5, right 3, left 0.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("0000 0111 1111 1000")
    assert alloc.pcpu_block_update_hint_alloc(chunk, 5, 8) is True
    assert chunk.md_blocks[0] == md(5, 0, 5, 0, 0)
    assert chunk.md_blocks[1] == md(3, 5, 0, 3, 5)


def test_update_hint_alloc_across_three_blocks_zeroes_the_middle() -> None:
    # alloc [6, 18) in 3x8: s_index 0, e_index 2, s_off 6, e_off 2.
    # block 0: refresh -> left 6, contig 6 @ 0, right 0.
    # block 2: first_free = find_next_zero_bit(block 2, 8, 2) = 2; refresh -> contig 6 @ 2,
    #   right 6, left 0.
    # block 1 (in between): contig/left/right = 0; contig_hint_start and
    #   first_free are not written (stay 0).
    _, alloc, chunk = new("3x8")
    chunk.alloc_map.value = bits("0000 0011 1111 1111 1100 0000")
    assert alloc.pcpu_block_update_hint_alloc(chunk, 6, 12) is True
    assert chunk.md_blocks[0] == md(6, 0, 6, 0, 0)
    assert chunk.md_blocks[1] == md(0, 0, 0, 0, 0)
    assert chunk.md_blocks[2] == md(6, 2, 0, 6, 2)


def test_update_hint_alloc_chunk_refresh_only_inside_the_chunk_hint() -> None:
    # The chunk test is bit_off in [contig_hint_start, contig_hint_start + contig_hint):
    # with the hint 3 @ 5, bit_off 8 (= 5 + 3) is outside, bit_off 7 inside.
    _, alloc, chunk = new("2x8")
    chunk.contig_hint, chunk.contig_hint_start = 3, 5
    chunk.alloc_map.value = bits("0000 0000 1000 0000")
    assert alloc.pcpu_block_update_hint_alloc(chunk, 8, 1) is False
    chunk.alloc_map.value = bits("0000 0001 1000 0000")
    assert alloc.pcpu_block_update_hint_alloc(chunk, 7, 1) is True


# ---------------------------------------------------------------------------
# pcpu_block_update_hint_free (called after alloc_map is cleared)
# ---------------------------------------------------------------------------


def test_update_hint_free_abutting_the_block_hint_skips_the_scan() -> None:
    # block 0 before: 1101 1011 (free [2,3) and [5,6)): contig 1 @ 2, left 0, right 0,
    # first_free 2.  Free [3, 5) -> map 1100 0011.
    # start: s_off 3 == contig_hint 1 + start 2 -> start = 2.
    # end: e_off 5 != e_block start 2 -> find_next_bit(map, 8, 5) = 6.
    # same block: contig 4; start != 0, end != 8; first_free = min(2, 2) = 2;
    # 4 > 1 -> contig 4 @ 2.  Not whole, same block -> else-if: 4 > chunk hint 8? no.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("1100 0011 0000 0000")
    set_md(chunk, 0, md(1, 2, 0, 0, 2))
    chunk.contig_hint, chunk.contig_hint_start = 8, 8
    assert alloc.pcpu_block_update_hint_free(chunk, 3, 2) is False
    assert chunk.md_blocks[0] == md(4, 2, 0, 0, 2)
    assert (chunk.contig_hint, chunk.contig_hint_start) == (8, 8)


def test_update_hint_free_raises_a_smaller_chunk_hint_to_the_block_hint() -> None:
    # Same free as above with the chunk hint 2 @ 9: 4 > 2 -> chunk contig_hint 4,
    # contig_hint_start = pcpu_block_off_to_off(0, 2) = 2; still no full refresh.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("1100 0011 1111 1111")
    set_md(chunk, 0, md(1, 2, 0, 0, 2))
    chunk.contig_hint, chunk.contig_hint_start = 2, 9
    assert alloc.pcpu_block_update_hint_free(chunk, 3, 2) is False
    assert (chunk.contig_hint, chunk.contig_hint_start) == (4, 2)


def test_update_hint_free_scans_left_with_find_last_bit() -> None:
    # block 0 before: 0010 0110 -> runs [0,2), [3,5) (contig 2 @ 0, the first), left 2,
    # right 0, first_free 0.  Free [5, 7) -> map 0010 0001.
    # start: s_off 5 != 2 + 0 -> l_bit = find_last_bit(map, 5) = 2 -> start = 3.
    # end: e_off 7 != e_block start 0 -> find_next_bit(map, 8, 7) = 7.
    # contig = 4 > 2 -> contig 4 @ 3; left/right untouched; first_free min(0, 3) = 0.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("0010 0001 0000 0000")
    set_md(chunk, 0, md(2, 0, 2, 0, 0))
    chunk.contig_hint, chunk.contig_hint_start = 8, 8
    assert alloc.pcpu_block_update_hint_free(chunk, 5, 2) is False
    assert chunk.md_blocks[0] == md(4, 3, 2, 0, 0)


def test_update_hint_free_at_block_start_sets_left_free() -> None:
    # block 0 before: 1110 0100 -> runs [3,5), [6,8): contig 2 @ 3, left 0, right 2,
    # first_free 3.  Free [0, 3) -> map 0000 0100.
    # start: s_off 0 != 2 + 3 -> l_bit = find_last_bit(map, 0) = 0 (size) == start -> 0.
    # end: e_off 3 == e_block contig_hint_start 3 -> end = 3 + 2 = 5.
    # contig 5; start == 0 -> left 5; end != 8; first_free min(3, 0) = 0; 5 > 2 -> 5 @ 0.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("0000 0100 0000 0000")
    set_md(chunk, 0, md(2, 3, 0, 2, 3))
    chunk.contig_hint, chunk.contig_hint_start = 8, 8
    assert alloc.pcpu_block_update_hint_free(chunk, 0, 3) is False
    assert chunk.md_blocks[0] == md(5, 0, 5, 2, 0)


def test_update_hint_free_making_a_block_whole_asks_for_a_chunk_refresh() -> None:
    # block 0 before: 0011 0000 -> contig 4 @ 4, left 2, right 4, first_free 0.
    # Free [2, 4) -> block empty.  start: 2 != 4 + 4 -> find_last_bit(map, 2) finds
    # nothing, returns 2 == start -> start 0.  end: e_off 4 == contig_hint_start 4 ->
    # end 8.  contig 8 -> left 8, right 8, contig 8 @ 0.  start 0 && end 8 -> true;
    # the chunk hint is left to pcpu_chunk_update_hint.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = 0
    set_md(chunk, 0, md(4, 4, 2, 4, 0))
    chunk.contig_hint, chunk.contig_hint_start = 4, 4
    assert alloc.pcpu_block_update_hint_free(chunk, 2, 2) is True
    assert chunk.md_blocks[0] == md(8, 0, 8, 8, 0)
    assert (chunk.contig_hint, chunk.contig_hint_start) == (4, 4)


def test_update_hint_free_across_blocks_from_a_block_start_resets_that_block() -> None:
    # 3x8.  Free [8, 20) = all of block 1 and bits 0-3 of block 2.
    # After: block 0 full, block 1 empty, block 2 = 0000 0010.
    # before: block 1 {contig 0 @ 0, left 0, right 0, first_free 0};
    #         block 2 = 1111 0010 -> {contig 2 @ 4, left 0, right 1, first_free 4}.
    # s_index 1, e_index 20/8 = 2, s_off 0, e_off 4.
    # start: s_off 0 == contig 0 + start 0 -> start = 0.
    # end: e_off 4 == block 2 contig_hint_start 4 -> end = 4 + 2 = 6.
    # across: start == 0 -> s_index-- (0); end != 8 -> block 2: first_free 0, left 6,
    #   6 > 2 -> contig 6 @ 0 (right stays 1).
    # middle i in [1, 2): block 1 reset to {8 @ 0, 8, 8, first_free 0}.  true.
    _, alloc, chunk = new("3x8")
    chunk.alloc_map.value = bits("1111 1111 0000 0000 0000 0010")
    set_md(chunk, 0, md(0, 0, 0, 0, 8))
    set_md(chunk, 1, md(0, 0, 0, 0, 0))
    set_md(chunk, 2, md(2, 4, 0, 1, 4))
    assert alloc.pcpu_block_update_hint_free(chunk, 8, 12) is True
    assert chunk.md_blocks[0] == md(0, 0, 0, 0, 8)
    assert chunk.md_blocks[1] == FREE
    assert chunk.md_blocks[2] == md(6, 0, 6, 1, 0)


def test_update_hint_free_across_blocks_to_a_block_end_resets_that_block() -> None:
    # 3x8.  Free [5, 16): after, block 0 = 1000 0000, blocks 1 and 2 empty.
    # before: block 0 = 1000 0111 -> {contig 4 @ 1, left 0, right 0, first_free 1};
    #         block 1 full {0 @ 0, 0, 0, first_free 8}; block 2 free.
    # s_index 0, s_off 5; e_off (16 & 7) = 0 -> e_off 8, e_index 1.
    # start: 5 == 4 + 1 -> start = 1.
    # end: e_off 8 != block 1 contig_hint_start 0 -> find_next_bit(block 1, 8, 8) = 8.
    # across: start != 0 -> first_free min(1, 1) = 1, contig = 8 - 1 = 7, right 7,
    #   7 > 4 -> contig 7 @ 1.  end == 8 -> e_index++ (2).
    # middle i in [1, 2): block 1 reset.  Block 2 untouched.  true.
    _, alloc, chunk = new("3x8")
    chunk.alloc_map.value = bits("1000 0000 0000 0000 0000 0000")
    set_md(chunk, 0, md(4, 1, 0, 0, 1))
    set_md(chunk, 1, md(0, 0, 0, 0, 8))
    assert alloc.pcpu_block_update_hint_free(chunk, 5, 11) is True
    assert chunk.md_blocks[0] == md(7, 1, 0, 7, 1)
    assert chunk.md_blocks[1] == FREE
    assert chunk.md_blocks[2] == FREE


# ---------------------------------------------------------------------------
# pcpu_chunk_update_hint
# ---------------------------------------------------------------------------


def test_chunk_update_hint_joins_free_runs_across_a_free_block() -> None:
    # 3x8 all populated, first_free_block 0.
    #   block 0 {contig 3 @ 5, left 0, right 3}; block 1 free; block 2 {4 @ 0, left 4, right 1}.
    # l_pop_off = 0.
    # i=0: pop_off 0; contig 3 != 8 -> page not empty.  cur_contig 0.  3 > 0 -> hint 3 @ 5.
    #      cur_contig = 3, off = 8 - 3 = 5.
    # i=1: pop_off 1 > 0, page 0 not empty -> no count; l_pop_off 1, empty = true.
    #      contig 8 -> stays empty.  cur_contig 3 + 8 = 11; left == 8 -> continue.
    # i=2: pop_off 2 > 1, empty -> nr += cnt_pop_pages(1, 2) = 1; l_pop_off 2.
    #      contig 4 -> not empty.  cur 11 + 4 = 15 > 3 -> hint 15 @ 5; cur 0.
    #      4 > 15 no.  cur = 1, off = 24 - 1 = 23.
    # end: 1 > 15 no; page 2 not empty.  nr_empty_pop_pages = 1;
    # global += 1 - 3 (chunk's old count) -> 3 - 2 = 1.
    _, alloc, chunk = new("3x8")
    set_md(chunk, 0, md(3, 5, 0, 3, 5))
    set_md(chunk, 2, md(4, 0, 4, 1, 0))
    alloc.pcpu_chunk_update_hint(chunk)
    assert (chunk.contig_hint, chunk.contig_hint_start) == (15, 5)
    assert chunk.nr_empty_pop_pages == 1
    assert alloc.pcpu_nr_empty_pop_pages == 1


def test_chunk_update_hint_counts_only_populated_empty_pages() -> None:
    # 3x8, pages 0 and 2 populated, every block free.  Stale counters: chunk 0, global 5.
    # i=0: hint 8 @ 0, cur 8, off 0.
    # i=1: pop_off 1 > 0, empty -> nr += cnt(0, 1) = 1.  cur 16, continue.
    # i=2: pop_off 2 > 1, empty -> nr += cnt(1, 2) = 0 (page 1 unpopulated).  cur 24, continue.
    # end: 24 > 8 -> hint 24 @ 0; empty -> nr += cnt(2, 3) = 1 -> 2.
    # global += 2 - 0 -> 7.
    _, alloc, chunk = new("3x8", populated=(0, 2))
    chunk.nr_empty_pop_pages = 0
    alloc.pcpu_nr_empty_pop_pages = 5
    alloc.pcpu_chunk_update_hint(chunk)
    assert (chunk.contig_hint, chunk.contig_hint_start) == (24, 0)
    assert chunk.nr_empty_pop_pages == 2
    assert alloc.pcpu_nr_empty_pop_pages == 7


def test_chunk_update_hint_starts_at_first_free_block() -> None:
    # 3x8, first_free_block 1; block 0 carries a stale "free" hint that must be ignored.
    #   block 1 {contig 2 @ 3, left 0, right 2}; block 2 {5 @ 0, left 5, right 0}.
    # l_pop_off = 1.  i=1: not empty; hint 2 @ 8 + 3 = 11; cur 2, off 16 - 2 = 14.
    # i=2: pop_off 2 > 1 (not empty, no count); contig 5 -> not empty;
    #      cur 2 + 5 = 7 > 2 -> hint 7 @ 14; cur 0.  5 > 7 no.  cur 0, off 24.
    # nr_empty 0; global 3 + (0 - 3) = 0.
    _, alloc, chunk = new("3x8")
    chunk.first_free_block = 1
    set_md(chunk, 1, md(2, 3, 0, 2, 3))
    set_md(chunk, 2, md(5, 0, 5, 0, 0))
    alloc.pcpu_chunk_update_hint(chunk)
    assert (chunk.contig_hint, chunk.contig_hint_start) == (7, 14)
    assert chunk.nr_empty_pop_pages == 0
    assert alloc.pcpu_nr_empty_pop_pages == 0


def test_chunk_update_hint_of_a_full_chunk_keeps_the_stale_start() -> None:
    # first_free_block == nr_blocks: no iteration; contig_hint = 0 but
    # contig_hint_start is never written.  cnt(2, 2) = 0 empty pages.
    _, alloc, chunk = new("2x8")
    chunk.first_free_block = 2
    chunk.contig_hint_start = 5
    alloc.pcpu_chunk_update_hint(chunk)
    assert (chunk.contig_hint, chunk.contig_hint_start) == (0, 5)
    assert chunk.nr_empty_pop_pages == 0 and alloc.pcpu_nr_empty_pop_pages == 0


def test_chunk_update_hint_of_the_reserved_chunk_leaves_the_global_count() -> None:
    # chunk == pcpu_reserved_chunk: only chunk->nr_empty_pop_pages changes.
    _, alloc, chunk = new("2x8")
    alloc.pcpu_reserved_chunk = chunk
    set_md(chunk, 0, md(3, 5, 0, 3, 5))
    alloc.pcpu_nr_empty_pop_pages = 9
    alloc.pcpu_chunk_update_hint(chunk)
    # i=0: 3 @ 5, cur 3, off 5; i=1: cur 11, continue; end: 11 @ 5; page 1 empty -> 1.
    assert (chunk.contig_hint, chunk.contig_hint_start, chunk.nr_empty_pop_pages) == (11, 5, 1)
    assert alloc.pcpu_nr_empty_pop_pages == 9


# ---------------------------------------------------------------------------
# pcpu_is_populated (C arithmetic as posted: ``off`` is in bits, PFN_DOWN takes bytes)
# ---------------------------------------------------------------------------


def test_is_populated_reads_bit_offsets_as_bytes() -> None:
    # 3x8, page 1 unpopulated.  PAGE_SIZE = 32.
    # (index 1, block_off 0, bit_size 2): off = 8 -> PFN_DOWN(8) = 0 (!), e_off = 8 + 2*4 = 16
    # -> PFN_UP(16) = 1.  Page 0 is populated -> true, although the bits are on page 1.
    _, alloc, chunk = new("3x8", populated=(0, 2))
    assert alloc.pcpu_is_populated(chunk, 1, 0, 2) == (True, None)
    # (index 0, block_off 0, bit_size 8): off 0, e_off 32 -> pages [0, 1): populated.
    assert alloc.pcpu_is_populated(chunk, 0, 0, 8) == (True, None)


def test_is_populated_next_index_is_four_times_the_page() -> None:
    # 3x8, page 1 unpopulated.  (index 1, 0, 8): off 8 -> page_start 0; e_off 8 + 32 = 40
    # -> page_end PFN_UP(40) = 2.  next_unpop(rs 0, end 2): rs = 1; re = find_next_bit(2, 2) = 2.
    # rs 1 < 2 -> false; next_index = re * PAGE_SIZE / B = 2 * 32 / 8 = 8.
    _, alloc, chunk = new("3x8", populated=(0, 2))
    assert alloc.pcpu_is_populated(chunk, 1, 0, 8) == (False, 8)
    # 3x8, page 2 unpopulated: (0, 0, 24): e_off 96 -> page_end 3; rs 2, re 3 -> next_index 12.
    _, alloc, chunk = new("3x8", populated=(0, 1))
    assert alloc.pcpu_is_populated(chunk, 0, 0, 24) == (False, 12)
    assert chunk.log == []


def test_is_populated_past_the_last_page_reads_the_populated_map_out_of_bounds() -> None:
    # 3x8, page 1 unpopulated.  (index 2, block_off 4, bit_size 20): off 20 -> page 0;
    # e_off 20 + 80 = 100 -> PFN_UP(100) = 4 > nr_pages 3.
    # find_next_zero_bit(populated, 4, 0) reads [0, 4) of a 3-bit map -> 1;
    # find_next_bit(populated, 4, 2) reads [2, 4) -> 2.  1 < 4 -> false, next 2*32/8 = 8.
    _, alloc, chunk = new("3x8", populated=(0, 2))
    assert alloc.pcpu_is_populated(chunk, 2, 4, 20) == (False, 8)
    assert chunk.log == [
        OutOfBounds("populated", "find_next_zero_bit", 0, 4, 3),
        OutOfBounds("populated", "find_next_bit", 2, 4, 3),
    ]


# ---------------------------------------------------------------------------
# pcpu_find_block_fit
# ---------------------------------------------------------------------------


def test_find_block_fit_contig_hint_case_returns_first_free() -> None:
    # block 0 = 1010 0000: runs [1,2) and [3,8): {contig 5 @ 3, left 0, right 5, first_free 1}.
    # bit_size 2, align 1: i=0: cur_free 0 + 0 < 2, left != 8 -> cur 0, s_index 0;
    # block_off = ALIGN(3, 1) - 3 = 0; 5 >= 0 + 2 -> block_off = first_free = 1,
    # end_off = 3 - 1 + 2 = 4 -> !pop_only -> break.  Return 0 * 8 + 1 = 1.
    # With align 4: block_off = ALIGN(3, 4) - 3 = 1; 5 >= 1 + 2 -> still first_free 1.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("1010 0000 0000 0000")
    set_md(chunk, 0, md(5, 3, 0, 5, 1))
    assert alloc.pcpu_find_block_fit(chunk, 2, 1, False) == 1
    assert alloc.pcpu_find_block_fit(chunk, 2, 4, False) == 1


def test_find_block_fit_right_free_case() -> None:
    # block 0 = 1001 1100: runs [1,3) and [6,8): {contig 2 @ 1, left 0, right 2, first_free 1}.
    # bit_size 2, align 2: block_off = ALIGN(1, 2) - 1 = 1; 2 >= 1 + 2? no.
    # right: block_off = ALIGN(8 - 2, 2) = 6 < 8; cur_free = 2 >= 2 -> end_off 2 -> break.
    # Return 0 * 8 + 6 = 6.
    _, alloc, chunk = new("2x8")
    chunk.alloc_map.value = bits("1001 1100 1111 1111")
    set_md(chunk, 0, md(2, 1, 0, 2, 1))
    set_md(chunk, 1, md(0, 0, 0, 0, 8))
    assert alloc.pcpu_find_block_fit(chunk, 2, 2, False) == 6


def test_find_block_fit_right_free_continues_into_the_next_block() -> None:
    # Block 0 as in the contig test ({5 @ 3, right 5, first_free 1}); bit_size 5, align 4:
    # block_off = ALIGN(3, 4) - 3 = 1; 5 >= 1 + 5? no.  right: ALIGN(8 - 5, 4) = 4 < 8,
    # cur_free = 4 < 5 -> next block.  i=1 (free): cur_free 4 + 8 = 12 >= 5 -> end_off 5,
    # break with s_index 0, block_off 4.  Return 4.
    _, alloc, chunk = new("2x8")
    set_md(chunk, 0, md(5, 3, 0, 5, 1))
    assert alloc.pcpu_find_block_fit(chunk, 5, 4, False) == 4


def test_find_block_fit_continues_across_a_fully_free_block() -> None:
    # 3x8: block 0 {3 @ 5, left 0, right 3, first_free 5}; block 1 free;
    #      block 2 {2 @ 0, left 2, right 0, first_free 0}.
    # bit_size 13: i=0: contig 3 < 13; right: block_off 5, cur_free 3.
    # i=1: cur 3 + 8 = 11 < 13, left == 8 -> continue.
    # i=2: cur 11 + 2 = 13 >= 13 -> break, s_index 0, block_off 5 -> 5.
    # bit_size 14: i=2: cur 13 < 14, left != 8 -> cur 0, s_index 2; contig 2 < 14;
    # right: ALIGN(8 - 0, 1) = 8 >= 8 -> s_index 3, continue; loop ends at i == 3 -> -1.
    _, alloc, chunk = new("3x8")
    set_md(chunk, 0, md(3, 5, 0, 3, 5))
    set_md(chunk, 2, md(2, 0, 2, 0, 0))
    assert alloc.pcpu_find_block_fit(chunk, 13, 1, False) == 5
    assert alloc.pcpu_find_block_fit(chunk, 14, 1, False) == -1


def test_find_block_fit_pop_only_on_a_populated_chunk() -> None:
    # 2x8 populated: i=0: cur 8 >= 2 -> end_off 2; pcpu_is_populated(0, 0, 2):
    # pages [0, 1) populated -> break.  Return 0.
    _, alloc, chunk = new("2x8")
    assert alloc.pcpu_find_block_fit(chunk, 2, 1, True) == 0


def test_find_block_fit_pop_only_accepts_an_unpopulated_page_as_posted() -> None:
    # 3x8, page 1 unpopulated, first_free_block 1 (block 0 full).  bit_size 2, pop_only:
    # i=1: cur 8 >= 2 -> s_index 1, block_off 0, end_off 2.
    # pcpu_is_populated(1, 0, 2): off 8 bits -> PFN_DOWN(8) = page 0 (populated) -> true.
    # Return 1 * 8 + 0 = 8: bits on the unpopulated page 1.
    _, alloc, chunk = new("3x8", populated=(0, 2))
    chunk.first_free_block = 1
    set_md(chunk, 0, md(0, 0, 0, 0, 8))
    assert alloc.pcpu_find_block_fit(chunk, 2, 1, True) == 8


def test_find_block_fit_pop_only_skips_by_next_index() -> None:
    # 6x8, page 0 unpopulated.  bit_size 2, pop_only.
    # i=0: end_off 2, is_populated(0, 0, 2): page 0 unpopulated; re = 1 ->
    #   next_index = 1 * 32 / 8 = 4 -> i = 3, s_index 4, cur = block_off = 0; i++ -> 4.
    # i=4: cur 8 >= 2 -> is_populated(4, 0, 2): off 32 -> page 1, e_off 40 -> page_end 2:
    #   populated -> break.  Return 4 * 8 + 0 = 32 (blocks 1-3 never looked at).
    _, alloc, chunk = new("6x8", populated=(1, 2, 3, 4, 5))
    assert alloc.pcpu_find_block_fit(chunk, 2, 1, True) == 32


def test_find_block_fit_pop_only_can_return_an_offset_past_the_bitmap() -> None:
    # 3x8, page 0 unpopulated.  i=0: is_populated(0, 0, 2) -> false, next_index 4 ->
    # i = 3, s_index 4; i++ -> 4.  The loop ends with i = 4 != nr_blocks 3, so the
    # "nothing found" test fails and the function returns s_index * 8 + 0 = 32,
    # past the 24-bit map.
    _, alloc, chunk = new("3x8", populated=(1, 2))
    assert alloc.pcpu_find_block_fit(chunk, 2, 1, True) == 32


def test_find_block_fit_patch10_rejects_a_misaligned_chunk_hint() -> None:
    # 2x8: block 0 = 1111 1000 {3 @ 5, left 0, right 3, first_free 5};
    #      block 1 = 1100 0111 {3 @ 2, left 0, right 0, first_free 2}.
    # chunk hint 3 @ 5 (the first of two 3-runs).  bit_size 3, align 2.
    # v1 (PATCH 10): block_off = ALIGN(5, 2) - 5 = 1; 1 + 3 > 3 -> return -1.
    # v1-patch09: i=0: ALIGN(5,2)-5 = 1, 3 < 1 + 3; right: ALIGN(5, 2) = 6, cur 2 < 3.
    #   i=1: cur 2 + 0 < 3, left != 8 -> s_index 1; ALIGN(2,2)-2 = 0, 3 >= 3 ->
    #   block_off = first_free 2, end_off 2 - 2 + 3 = 3 -> break.  Return 8 + 2 = 10.
    for variant, expected in (("v1", -1), ("v1-patch09", 10)):
        _, alloc, chunk = new("2x8", variant=variant)
        chunk.alloc_map.value = bits("1111 1000 1100 0111")
        set_md(chunk, 0, md(3, 5, 0, 3, 5))
        set_md(chunk, 1, md(3, 2, 0, 0, 2))
        chunk.contig_hint, chunk.contig_hint_start = 3, 5
        assert alloc.pcpu_find_block_fit(chunk, 3, 2, False) == expected, variant


# ---------------------------------------------------------------------------
# pcpu_alloc_area: PATCH 09 searches the map, PATCH 10 a window of start + bit_size + B
# ---------------------------------------------------------------------------


def _alloc_area_state(variant: str) -> tuple[PcpuAllocator, PcpuChunk]:
    # 2x8, bits 0-9 allocated: block 0 full {0 @ 0, 0, 0, first_free 8};
    # block 1 = 1100 0000 {6 @ 2, left 0, right 6, first_free 2}; chunk free 6, hint 6 @ 10,
    # first_free_block 1.
    _, alloc, chunk = new("2x8", variant=variant)
    chunk.alloc_map.value = bits("1111 1111 1100 0000")
    set_md(chunk, 0, md(0, 0, 0, 0, 8))
    set_md(chunk, 1, md(6, 2, 0, 6, 2))
    chunk.free_bits, chunk.contig_hint, chunk.contig_hint_start = 6, 6, 10
    chunk.first_free_block = 1
    return alloc, chunk


def test_alloc_area_patch09_searches_the_whole_map() -> None:
    # bitmap_find_next_zero_area(map, 16, start 0, 1, 0) -> 10.  set bit 10;
    # bound_map: set 10, clear [11, 11), set 11.  free_bits 5.
    # update_hint_alloc(10, 1): s_index = e_index = 1, s_off 2, e_off 3; s_off == first_free
    #   -> first_free = find_next_zero_bit(block 1, 8, 3) = 3; 2 in [2, 8) -> refresh from 3:
    #   {5 @ 3, left 0, right 5}.  10 in chunk hint [10, 16) -> chunk refresh:
    #   l_pop_off 1; i=1: not empty; hint 5 @ 11; cur 5, off 11; end: 5 > 5 no.
    #   nr_empty 0; global 2 + (0 - 2) = 0.
    # first_free_block: block 1 contig 5 != 0 -> 1.  Return 10 * 4 = 40.
    alloc, chunk = _alloc_area_state("v1-patch09")
    assert alloc.pcpu_alloc_area(chunk, 1, 1, 0) == 40
    assert chunk.alloc_map.value == bits("1111 1111 1110 0000")
    assert chunk.bound_map.value == bits("0000 0000 0011 0000 0")
    assert chunk.free_bits == 5
    assert chunk.md_blocks[1] == md(5, 3, 0, 5, 3)
    assert (chunk.contig_hint, chunk.contig_hint_start) == (5, 11)
    assert chunk.first_free_block == 1
    assert (chunk.nr_empty_pop_pages, alloc.pcpu_nr_empty_pop_pages) == (0, 0)
    assert chunk.log == []


def test_alloc_area_patch10_window_misses_a_fit_beyond_it() -> None:
    # PATCH 10: end = 0 + 1 + 8 = 9; find_next_zero_bit(map, 9, 0) = 9; index 9,
    # 9 + 1 > 9 -> returns 10 >= end 9 -> -1.  Nothing changes.
    alloc, chunk = _alloc_area_state("v1")
    assert alloc.pcpu_alloc_area(chunk, 1, 1, 0) == -1
    assert chunk.alloc_map.value == bits("1111 1111 1100 0000")
    assert chunk.free_bits == 6
    assert chunk.log == []


def test_alloc_area_patch10_window_past_the_map_is_recorded() -> None:
    # start 10: end = 10 + 1 + 8 = 19 > 16 bits.  find_next_zero_bit(map, 19, 10)
    # reads [10, 19) -> 10; end 11 <= 19; find_next_bit(map, 11, 10) = 11 -> 10.
    # Same placement as PATCH 09, but the scan left the map.
    alloc, chunk = _alloc_area_state("v1")
    assert alloc.pcpu_alloc_area(chunk, 1, 1, 10) == 40
    assert chunk.log == [OutOfBounds("alloc_map", "find_next_zero_bit", 10, 19, 16)]
    alloc, chunk = _alloc_area_state("v1-patch09")
    assert alloc.pcpu_alloc_area(chunk, 1, 1, 10) == 40
    assert chunk.log == []


def test_pop_only_alloc_past_the_map_v1_writes_outside_patch09_fails() -> None:
    # 3x8, page 0 unpopulated; pcpu_alloc(2 bits, atomic).  pcpu_find_block_fit -> 32
    # (see above).  Slot 5 >= pcpu_size_to_slot(2) = 1 and 2 <= contig 24, so the
    # chunk is tried.
    # v1-patch09: bitmap_find_next_zero_area(map, 24, 32, 2, 0): find_next_zero_bit
    #   returns 24 (offset >= size); 24 + 2 > 24 -> 26 >= 24 -> -1.
    # v1: end = 32 + 2 + 8 = 42: zero bit at 32 (read past the map), find_next_bit(34, 32)
    #   = 34 -> bit_off 32 < 42.  bitmap_set(32, 2), bound_map bits 32, [33, 34), 34 all
    #   past the end (dropped); free_bits 24 - 2 = 22 although no bit changed;
    #   update_hint_alloc indexes md_blocks[4] (of 3) twice and scans block 4's view from
    #   bit 2, [34, 40).  32 not in the chunk hint [0, 24) -> no chunk refresh.
    #   Slot: __pcpu_size_to_slot(22) = fls(22) - 3 + 2 = 4.  Returns 32 * 4 = 128 bytes.
    ref, _, chunk = new("3x8", populated=(1, 2), variant="v1-patch09")
    assert ref.apply(Alloc(2, 1, pop_only=True)).bit_off is None
    assert chunk.free_bits == 24 and chunk.log == []

    ref, alloc, chunk = new("3x8", populated=(1, 2), variant="v1")
    step = ref.apply(Alloc(2, 1, pop_only=True))
    assert step.bit_off == 32
    # (the md_blocks pointer past the array is written through, so it counts as a write)
    assert [(e.bitmap, e.function, e.start, e.end, e.nbits, e.write) for e in step.accesses] == [
        ("alloc_map", "find_next_zero_bit", 32, 42, 24, False),
        ("alloc_map", "find_next_bit", 32, 34, 24, False),
        ("alloc_map", "bitmap_set", 32, 34, 24, True),
        ("bound_map", "set_bit", 32, 33, 25, True),
        ("bound_map", "bitmap_clear", 33, 34, 25, True),
        ("bound_map", "set_bit", 34, 35, 25, True),
        ("md_blocks", "md_blocks[]", 4, 5, 3, True),
        ("md_blocks", "md_blocks[]", 4, 5, 3, True),
        ("alloc_map", "find_next_zero_bit", 34, 40, 24, False),
    ]
    assert chunk.alloc_map.value == 0 and chunk.bound_map.value == 0
    assert chunk.free_bits == 22
    assert (chunk.contig_hint, chunk.contig_hint_start) == (24, 0)
    assert list(chunk.md_blocks) == [FREE, FREE, FREE]
    assert chunk.slot == 4


# ---------------------------------------------------------------------------
# pcpu_alloc_area + pcpu_free_area end to end
# ---------------------------------------------------------------------------


def test_alloc_then_free_in_one_block() -> None:
    # 2x8 fresh.  alloc 3: find_block_fit -> 0 (cur 8 >= 3).  alloc_area: [0,3);
    #   bound {0, 3}; free 13; block 0 {5 @ 3, left 0, right 5, ff 3}; chunk refresh:
    #   i=0 hint 5 @ 3, cur 5, off 3; i=1 cur 13 continue; end 13 @ 3; page 1 empty -> 1;
    #   global 2 + (1 - 2) = 1.  Slot: fls(13) - 1 = 3.
    # alloc 2: fit: i=0 cur 0; ALIGN(3,1)-3 = 0, 5 >= 2 -> first_free 3.  alloc_area from 3:
    #   [3,5); bound {0, 3, 5}; free 11; s_off 3 == ff -> ff = 5, refresh -> {3 @ 5, 0, 3, 5};
    #   3 in [3, 16) -> chunk refresh -> 11 @ 5, nr_empty 1.  Slot fls(11) - 1 = 3.
    ref, alloc, chunk = new("2x8")
    assert ref.apply(Alloc(3)).bit_off == 0
    assert chunk.md_blocks[0] == md(5, 3, 0, 5, 3)
    assert (chunk.contig_hint, chunk.contig_hint_start, chunk.free_bits, chunk.slot) == (13, 3, 13, 3)
    assert (chunk.nr_empty_pop_pages, alloc.pcpu_nr_empty_pop_pages) == (1, 1)
    assert ref.apply(Alloc(2)).bit_off == 3
    assert chunk.md_blocks[0] == md(3, 5, 0, 3, 5)
    assert (chunk.contig_hint, chunk.contig_hint_start, chunk.free_bits) == (11, 5, 11)
    assert chunk.bound_map.value == bits("1001 0100 0000 0000 0")

    # free bit_off 0: end = find_next_bit(bound_map, 16, 1) = 3 -> bit_size 3; clear [0, 3);
    # free 14; block 0 first_free = min(5, 0) = 0; first_free_block min(0, 0) = 0.
    # update_hint_free(0, 3): start: 0 != 3 + 5 -> find_last_bit(map, 0) = 0 == start -> 0;
    # end: e_off 3 != contig start 5 -> find_next_bit(map, 8, 3) = 3.  contig 3, left 3;
    # 3 > 3 no.  Not whole; 3 > chunk 11 no -> false, chunk hint unchanged 11 @ 5.
    # bound_map is not touched on free.  Slot fls(14) - 1 = 3.
    ref.apply(Free(0))
    assert chunk.alloc_map.value == bits("0001 1000 0000 0000")
    assert chunk.bound_map.value == bits("1001 0100 0000 0000 0")
    assert chunk.md_blocks[0] == md(3, 5, 3, 3, 0)
    assert (chunk.contig_hint, chunk.contig_hint_start, chunk.free_bits, chunk.slot) == (11, 5, 14, 3)
    assert (chunk.nr_empty_pop_pages, alloc.pcpu_nr_empty_pop_pages) == (1, 1)

    # free bit_off 3: end = find_next_bit(bound_map, 16, 4) = 5 -> 2 bits; map empty; free 16.
    # update_hint_free(3, 2): start: 3 != 8 -> find_last_bit(map, 3) = 3 (none) -> 0;
    # end: e_off 5 == contig start 5 -> 5 + 3 = 8.  contig 8 -> {8 @ 0, 8, 8, 0}; whole -> true.
    # chunk refresh: i=0 hint 8 @ 0, cur 8; i=1 page 0 empty -> +1, cur 16 continue;
    # end 16 @ 0; page 1 empty -> +1 = 2; global 1 + (2 - 1) = 2.
    # Slot: free_bits 16 == pcpu_pages_to_bits(2) -> pcpu_nr_slots - 1 = 5.
    ref.apply(Free(3))
    assert chunk.alloc_map.value == 0
    assert list(chunk.md_blocks) == [FREE, FREE]
    assert (chunk.contig_hint, chunk.contig_hint_start, chunk.free_bits, chunk.slot) == (16, 0, 16, 5)
    assert (chunk.nr_empty_pop_pages, alloc.pcpu_nr_empty_pop_pages) == (2, 2)


def test_alloc_then_free_across_blocks() -> None:
    # 2x8.  alloc 6 -> [0, 6): block 0 {2 @ 6, left 0, right 2, ff 6}; chunk 10 @ 6; nr_empty 1.
    # alloc 6: fit: i=0 contig 2 < 6; right: block_off 6, cur 2; i=1: cur 10 >= 6 -> 0*8 + 6.
    #   alloc_area [6, 12); bound {0, 6, 12}; free 4.  update_hint_alloc(6, 6): s 0, e 1,
    #   s_off 6, e_off 4.  s_off == ff 6 -> ff = find_next_zero_bit(map, 8, 12) = 8;
    #   6 in [6, 8) -> refresh from 8: {0 @ 6, 0, 0, 8}.  block 1: ff = 4, refresh ->
    #   {4 @ 4, 0, 4, 4}.  6 in [6, 16) -> chunk refresh: i=0 hint 0, cur 0, off 8;
    #   i=1: hint 4 @ 12, cur 4, off 12; nr_empty 0; global 1 - 1 = 0.
    #   first_free_block: block 0 contig 0 -> 1.  Slot fls(4) - 1 = 2.
    ref, alloc, chunk = new("2x8")
    assert ref.apply(Alloc(6)).bit_off == 0
    assert ref.apply(Alloc(6)).bit_off == 6
    assert list(chunk.md_blocks) == [md(0, 6, 0, 0, 8), md(4, 4, 0, 4, 4)]
    assert (chunk.contig_hint, chunk.contig_hint_start, chunk.first_free_block) == (4, 12, 1)
    assert (chunk.free_bits, chunk.slot, chunk.nr_empty_pop_pages, alloc.pcpu_nr_empty_pop_pages) == (4, 2, 0, 0)

    # free 6: end = find_next_bit(bound_map, 16, 7) = 12 -> 6 bits; map 1111 1100 0000 0000;
    # free 10; block 0 ff = min(8, 6) = 6; first_free_block = min(1, 0) = 0.
    # update_hint_free(6, 6): start: s_off 6 == contig 0 + start 6 -> 6.
    # end: e_off 4 == block 1 contig start 4 -> 4 + 4 = 8.
    # across: start != 0 -> ff min(6, 6) = 6, contig 2, right 2, 2 > 0 -> 2 @ 6.
    # end == 8 -> e_index 2; middle [1, 2): block 1 reset.  -> true.
    # chunk refresh from block 0: i=0 hint 2 @ 6, cur 2, off 6; i=1 cur 10 continue;
    # end 10 @ 6; page 1 empty -> 1; global 0 + 1 = 1.  Slot fls(10) - 1 = 3.
    ref.apply(Free(6))
    assert chunk.alloc_map.value == bits("1111 1100 0000 0000")
    assert chunk.bound_map.value == bits("1000 0010 0000 1000 0")
    assert list(chunk.md_blocks) == [md(2, 6, 0, 2, 6), FREE]
    assert (chunk.contig_hint, chunk.contig_hint_start, chunk.first_free_block) == (10, 6, 0)
    assert (chunk.free_bits, chunk.slot, chunk.nr_empty_pop_pages, alloc.pcpu_nr_empty_pop_pages) == (10, 3, 1, 1)


def test_non_atomic_alloc_counts_the_page_it_populates_as_empty() -> None:
    # 2x8, nothing populated.  alloc 3 (not pop_only): pcpu_alloc_area's chunk refresh
    # counts populated empty pages: none -> nr_empty 0.  Then pcpu_alloc populates
    # pages PFN_DOWN(0) .. PFN_UP(12) = [0, 1): pcpu_chunk_populated adds nr = 1 to
    # nr_empty_pop_pages (chunk and global) although page 0 now holds the allocation.
    ref, alloc, chunk = new("2x8", populated=())
    assert ref.apply(Alloc(3)).bit_off == 0
    assert chunk.populated.value == 0b01
    assert (chunk.nr_populated, chunk.nr_empty_pop_pages, alloc.pcpu_nr_empty_pop_pages) == (1, 1, 1)


# ---------------------------------------------------------------------------
# pcpu_chunk_populated / pcpu_chunk_depopulated
# ---------------------------------------------------------------------------


def test_chunk_populated_and_depopulated_move_all_three_counters() -> None:
    # 2x8 with page 0 populated: nr_populated 1, nr_empty 1, global 1.
    # populated(1, 2): bitmap_set(populated, 1, 1); each counter += 1.
    # depopulated(0, 1): bitmap_clear(populated, 0, 1); each counter -= 1.
    _, alloc, chunk = new("2x8", populated=(0,))
    assert (chunk.populated.value, chunk.nr_populated, chunk.nr_empty_pop_pages) == (0b01, 1, 1)
    alloc.pcpu_chunk_populated(chunk, 1, 2)
    assert (chunk.populated.value, chunk.nr_populated, chunk.nr_empty_pop_pages) == (0b11, 2, 2)
    assert alloc.pcpu_nr_empty_pop_pages == 2
    alloc.pcpu_chunk_depopulated(chunk, 0, 1)
    assert (chunk.populated.value, chunk.nr_populated, chunk.nr_empty_pop_pages) == (0b10, 1, 1)
    assert alloc.pcpu_nr_empty_pop_pages == 1


def test_populate_op_walks_the_unpopulated_regions() -> None:
    # 3x8, page 1 populated.  pcpu_for_each_unpop_region(0, 2): rs = find_next_zero_bit(2, 0)
    # = 0, re = find_next_bit(2, 1) = 1 -> [0, 1); next from re + 1 = 2: rs 2, re 2 -> stop.
    # So only page 0 is added: nr_populated 2, nr_empty 2, global 2.
    ref, alloc, chunk = new("3x8", populated=(1,))
    ref.apply(Populate(0, 2))
    assert chunk.populated.value == 0b011
    assert (chunk.nr_populated, chunk.nr_empty_pop_pages, alloc.pcpu_nr_empty_pop_pages) == (2, 2, 2)


# ---------------------------------------------------------------------------
# pcpu_chunk_slot
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free_bits", "contig_hint", "slot"),
    [
        (16, 16, 5),  # == pcpu_pages_to_bits(pcpu_unit_pages) -> pcpu_nr_slots - 1
        (0, 0, 0),  # no free bits
        (5, 0, 0),  # free bits but contig_hint 0 -> 0
        (1, 1, 1),  # max(fls(1) - 3 + 2, 1) = max(0, 1) = 1
        (3, 1, 1),  # fls(3) = 2 -> 1
        (7, 2, 2),  # fls(7) = 3 -> 2
        (8, 8, 3),  # fls(8) = 4 -> 3
        (15, 3, 3),  # fls(15) = 4 -> 3
    ],
)
def test_pcpu_chunk_slot(free_bits: int, contig_hint: int, slot: int) -> None:
    _, alloc, chunk = new("2x8")
    chunk.free_bits, chunk.contig_hint = free_bits, contig_hint
    assert alloc.pcpu_chunk_slot(chunk) == slot


def test_pcpu_nr_slots_and_the_empty_slot_of_a_three_page_chunk() -> None:
    # unit bits 24: __pcpu_size_to_slot(24) = fls(24) = 5 -> 4; nr_slots 4 + 2 = 6.
    # free 24 -> slot 5; free 16 -> fls(16) = 5 -> 4 (not the empty slot).
    _, alloc, chunk = new("3x8")
    assert alloc.pcpu_nr_slots == 6
    assert alloc.pcpu_chunk_slot(chunk) == 5
    chunk.free_bits = 16
    assert alloc.pcpu_chunk_slot(chunk) == 4


# ---------------------------------------------------------------------------
# pcpu_align_reserved_region and pcpu_setup_first_chunk (model/first_chunk.py)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("static_size", "reserved_size", "page_size", "aligned"),
    [
        (20, 8, 32, 12),  # PFN_ALIGN(28) = 32; 32 - 20
        (20, 12, 32, 12),  # already ends on a page
        (20, 13, 32, 44),  # PFN_ALIGN(33) = 64; 64 - 20
        (32, 1, 32, 32),  # PFN_ALIGN(33) = 64; 64 - 32
        (20, 0, 32, 0),  # !reserved_size -> 0
        (4100, 8192, 4096, 12284),  # PFN_ALIGN(12292) = 16384; 16384 - 4100
    ],
)
def test_pcpu_align_reserved_region(static_size: int, reserved_size: int, page_size: int, aligned: int) -> None:
    assert pcpu_align_reserved_region(static_size, reserved_size, page_size) == aligned


def test_setup_first_chunk_refuses_a_reserved_region_not_ending_on_a_page() -> None:
    # PCPU_SETUP_BUG_ON(reserved_size && !PAGE_ALIGNED(static_size + reserved_size)): 20 + 8.
    with pytest.raises(LayoutError, match="PAGE_ALIGNED"):
        check_layout(FirstChunkInit(20, 8, 36), 32)
    # sized with pcpu_align_reserved_region it is accepted
    layout = check_layout(FirstChunkInit(20, pcpu_align_reserved_region(20, 8, 32), 32), 32)
    assert (layout.pcpu_reserved_offset, layout.begin_fill_bits) == (20, 5)


def test_setup_first_chunk_with_reserved_region_and_static_overlap() -> None:
    # PAGE_SIZE 32 (B 8); static 20, reserved 12, dyn 32.
    # pcpu_reserved_offset = (base + 20) - ((base + 20) & PAGE_MASK) = 20; begin_fill_bits 5;
    # map_size_bytes = 12 + 20 = 32 -> chunk_pages 1; dyn chunk 32 >> 5 = 1 page;
    # unit pages 64 / 32 = 2 -> pcpu_nr_slots = (fls(16) - 1) + 2 = 6.
    # Reserved chunk: pcpu_alloc_first_chunk(1): populated, nr_populated = nr_empty = 1;
    #   contig_hint = free_bits = 8 - 5 = 3; has_reserved; alloc_map bits [0, 5); bound {0, 5}.
    #   update_hint_alloc(0, 5): s_off 0 == ff 0 -> ff = find_next_zero_bit(8, 5) = 5;
    #   0 in [0, 8) -> refresh from 5 -> {3 @ 5, left 0, right 3}.  0 in chunk [0, 3) -> chunk
    #   refresh: hint 3 @ 5; page 0 not empty -> nr_empty 0.  pcpu_reserved_chunk is set only
    #   afterwards, so the global count moves here (0 + (0 - 1)) -- and is then overwritten.
    # Dynamic chunk: pcpu_alloc_first_chunk(1), contig = free = 8.  It is pcpu_first_chunk;
    #   pcpu_nr_empty_pop_pages = its nr_empty_pop_pages = 1; relocate(-1): free 8 != 16
    #   -> __pcpu_size_to_slot(8) = 3.
    ref = Reference("v1-patch09", Geometry(8, 1, (0,)), FirstChunkInit(20, 12, 32))
    alloc = ref.alloc
    reserved, dynamic = ref.chunks["reserved"], ref.chunks["dynamic"]
    assert alloc.pcpu_reserved_offset == 20 and reserved.allocations == {0: 5}
    assert alloc.pcpu_nr_slots == 6
    assert alloc.pcpu_reserved_chunk is reserved and alloc.pcpu_first_chunk is dynamic
    assert alloc.pcpu_nr_empty_pop_pages == 1

    assert reserved.nr_pages == 1 and reserved.immutable and reserved.has_reserved
    assert reserved.alloc_map.value == bits("1111 1000")
    assert reserved.bound_map.value == bits("1000 0100 0")
    assert list(reserved.md_blocks) == [md(3, 5, 0, 3, 5)]
    assert (reserved.free_bits, reserved.contig_hint, reserved.contig_hint_start) == (3, 3, 5)
    assert (reserved.nr_populated, reserved.nr_empty_pop_pages, reserved.first_free_block) == (1, 0, 0)
    assert reserved.slot == -1  # the reserved chunk is never put on a slot
    assert reserved.allocations == {0: 5}

    assert dynamic.nr_pages == 1 and dynamic.immutable and not dynamic.has_reserved
    assert dynamic.alloc_map.value == 0 and dynamic.bound_map.value == 0
    assert list(dynamic.md_blocks) == [FREE]
    assert (dynamic.free_bits, dynamic.contig_hint, dynamic.contig_hint_start) == (8, 8, 0)
    assert (dynamic.nr_populated, dynamic.nr_empty_pop_pages, dynamic.slot) == (1, 1, 3)

    # A reserved alloc of 3: find_block_fit: contig 3 @ 5 fits -> first_free 5.
    # alloc_area [5, 8): e_off 0 -> 8, e_index 0; ff = find_next_zero_bit(8, 8) = 8;
    # 5 in [5, 8) -> refresh -> {0 @ 5, 0, 0, 8}; 5 in chunk [5, 8) -> chunk refresh:
    # contig 0 (start stays 5); the reserved chunk leaves the global count alone.
    # first_free_block -> 1.  Not relocated (reserved).
    step = ref.apply(Alloc(3, reserved=True))
    assert step.bit_off == 5
    assert reserved.alloc_map.value == 0xFF
    assert list(reserved.md_blocks) == [md(0, 5, 0, 0, 8)]
    assert (reserved.free_bits, reserved.contig_hint, reserved.contig_hint_start) == (0, 0, 5)
    assert reserved.first_free_block == 1 and reserved.slot == -1
    assert alloc.pcpu_nr_empty_pop_pages == 1


def test_setup_first_chunk_without_reserved_region_hides_the_static_overlap() -> None:
    # static 20, reserved 0, dyn 44: offset 20, begin_fill_bits 5;
    # map_size_bytes = 44 + 20 = 64 -> 2 pages; unit pages 64 / 32 = 2.
    # One chunk (the dynamic one): contig = free = 16 - 5 = 11; bits [0, 5); bound {0, 5};
    # update_hint_alloc(0, 5) -> block 0 {3 @ 5, 0, 3, 5}, chunk refresh: i=0 3 @ 5, cur 3,
    # off 5; i=1 cur 11 continue; end 11 @ 5; page 1 empty -> nr_empty 1.
    # pcpu_reserved_chunk stays NULL; pcpu_nr_empty_pop_pages = 1;
    # relocate: free 11 != 16 -> fls(11) - 1 = 3.
    ref = Reference("v1", Geometry(8, 1, (0,)), FirstChunkInit(20, 0, 44))
    alloc = ref.alloc
    assert set(ref.chunks) == {"dynamic"}
    chunk = ref.chunks["dynamic"]
    assert alloc.pcpu_reserved_chunk is None and alloc.pcpu_first_chunk is chunk
    assert chunk.nr_pages == 2 and chunk.has_reserved and chunk.immutable
    assert chunk.alloc_map.value == bits("1111 1000 0000 0000")
    assert list(chunk.md_blocks) == [md(3, 5, 0, 3, 5), FREE]
    assert (chunk.free_bits, chunk.contig_hint, chunk.contig_hint_start) == (11, 11, 5)
    assert (chunk.nr_populated, chunk.nr_empty_pop_pages, alloc.pcpu_nr_empty_pop_pages) == (2, 1, 1)
    assert chunk.slot == 3
    assert chunk.allocations == {0: 5}
