"""model/bitmap.py against the kernel's own lib/find_bit.c and lib/bitmap.c, compiled with gcc.

In bounds, every primitive must return exactly what the C returns and leave
exactly the bits the C leaves (including the conventions the allocator
leans on: ``size`` when a scan finds nothing, ``find_last_bit`` returning
``size`` rather than -1, ``bitmap_find_next_zero_area`` returning a value
past ``size`` on failure).  Out of bounds, the model's contract is its own:
the access is recorded as an ``OutOfBounds`` entry (``write=True`` for a
write, which corrupts memory), reads see zeros (what the C reads from zeroed
memory past the end) and writes are dropped.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcpuverify.model.bitmap import Bitmap, OutOfBounds

# tests/ is not a package: pytest's "prepend" import mode puts it on sys.path
from c_oracle import BITS_PER_LONG, LinuxBitmap

MAX_BITS = 200

ORACLE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mask(n: int) -> int:
    return (1 << n) - 1 if n > 0 else 0


@st.composite
def bitmaps(draw: st.DrawFn, min_bits: int = 1, max_bits: int = MAX_BITS) -> tuple[int, int]:
    """``(nbits, value)``: random words, or runs of set/clear bits (the shapes allocations leave)."""
    nbits = draw(st.integers(min_bits, max_bits))
    style = draw(st.sampled_from(("random", "runs", "empty", "full")))
    if style == "random":
        return nbits, draw(st.integers(0, _mask(nbits)))
    if style == "empty":
        return nbits, 0
    if style == "full":
        return nbits, _mask(nbits)
    value = draw(st.sampled_from((0, _mask(nbits))))
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, nbits - 1))
        length = draw(st.integers(1, nbits - start))
        run = _mask(length) << start
        value = value | run if draw(st.booleans()) else value & ~run
    return nbits, value


def make(nbits: int, value: int, name: str = "alloc_map") -> Bitmap:
    bitmap = Bitmap(name, nbits, [])
    bitmap.value = value
    return bitmap


ALIGN_MASKS = st.sampled_from((0, 1, 3, 7, 15, 31, 63, 127))


# ---------------------------------------------------------------------------
# In bounds: the model equals the C, bit for bit, and records nothing.
# ---------------------------------------------------------------------------


@ORACLE
@given(data=st.data(), fn=st.sampled_from(("find_next_bit", "find_next_zero_bit")))
def test_find_next_matches_linux(linux_bitmap: LinuxBitmap, data: st.DataObject, fn: str) -> None:
    nbits, value = data.draw(bitmaps())
    size = data.draw(st.integers(0, nbits), label="size")
    offset = data.draw(st.integers(0, nbits + 80), label="offset")  # offset >= size included
    bitmap = make(nbits, value)
    expected, after = linux_bitmap.call(fn, value, size, offset)
    assert getattr(bitmap, fn)(size, offset) == expected
    assert after == value and bitmap.value == value
    assert bitmap.log == []


@ORACLE
@given(data=st.data(), fn=st.sampled_from(("find_first_bit", "find_first_zero_bit", "find_last_bit")))
def test_find_first_and_last_match_linux(linux_bitmap: LinuxBitmap, data: st.DataObject, fn: str) -> None:
    nbits, value = data.draw(bitmaps())
    size = data.draw(st.integers(0, nbits), label="size")
    bitmap = make(nbits, value)
    expected, _ = linux_bitmap.call(fn, value, size)
    assert getattr(bitmap, fn)(size) == expected
    assert bitmap.log == []


def test_find_conventions_return_size_when_nothing_is_found(linux_bitmap: LinuxBitmap) -> None:
    # The allocator depends on these three: pcpu_block_update_hint_free tests
    # ``start == find_last_bit(map, start)`` to mean "no set bit below start".
    bitmap = make(100, 0)
    assert linux_bitmap.call("find_last_bit", 0, 37)[0] == 37
    assert bitmap.find_last_bit(37) == 37
    assert bitmap.find_last_bit(0) == 0
    assert bitmap.find_next_bit(100, 3) == 100
    full = make(100, _mask(100))
    assert linux_bitmap.call("find_next_zero_bit", _mask(100), 100, 3)[0] == 100
    assert full.find_next_zero_bit(100, 3) == 100
    assert full.find_next_zero_bit(50, 70) == 50  # offset >= size: size, nothing read
    assert full.log == [] and bitmap.log == []


@ORACLE
@given(data=st.data())
def test_test_bit_matches_linux(linux_bitmap: LinuxBitmap, data: st.DataObject) -> None:
    nbits, value = data.draw(bitmaps())
    nr = data.draw(st.integers(0, nbits - 1), label="nr")
    bitmap = make(nbits, value)
    assert bitmap.test_bit(nr) == bool(linux_bitmap.call_nr("test_bit", nr, value)[0])
    assert bitmap.log == []


@ORACLE
@given(data=st.data(), fn=st.sampled_from(("set_bit", "clear_bit")))
def test_single_bit_writes_match_linux(linux_bitmap: LinuxBitmap, data: st.DataObject, fn: str) -> None:
    nbits, value = data.draw(bitmaps())
    nr = data.draw(st.integers(0, nbits - 1), label="nr")
    bitmap = make(nbits, value)
    getattr(bitmap, fn)(nr)
    assert bitmap.value == linux_bitmap.call_nr(fn, nr, value)[1]
    assert bitmap.log == []


@ORACLE
@given(data=st.data(), fn=st.sampled_from(("bitmap_set", "bitmap_clear")))
def test_range_writes_match_linux(linux_bitmap: LinuxBitmap, data: st.DataObject, fn: str) -> None:
    nbits, value = data.draw(bitmaps())
    start = data.draw(st.integers(0, nbits), label="start")
    nr = data.draw(st.integers(0, nbits - start), label="nr")  # nr == 0: bitmap_clear(map, off + 1, 0)
    bitmap = make(nbits, value)
    getattr(bitmap, fn)(start, nr)
    _, after = linux_bitmap.call(fn, value, start, nr)
    assert bitmap.value == after
    assert bitmap.log == []


@ORACLE
@given(data=st.data())
def test_bitmap_weight_matches_linux(linux_bitmap: LinuxBitmap, data: st.DataObject) -> None:
    nbits, value = data.draw(bitmaps())
    n = data.draw(st.integers(0, nbits), label="n")
    bitmap = make(nbits, value)
    assert bitmap.bitmap_weight(n) == linux_bitmap.call("bitmap_weight", value, n)[0]
    assert bitmap.log == []


@ORACLE
@given(data=st.data())
def test_bitmap_fill_matches_linux_on_the_maps_percpu_fills(linux_bitmap: LinuxBitmap, data: st.DataObject) -> None:
    # 4.12's bitmap_fill *assigns* the last word BITMAP_LAST_WORD_MASK(nbits),
    # clearing bits [n, round_up(n, BITS_PER_LONG)).  percpu only fills zeroed
    # maps (alloc_map in pcpu_setup_first_chunk, populated in
    # pcpu_alloc_first_chunk), where that makes no difference, so the
    # comparison is made on maps whose bits in that tail are clear.
    nbits, value = data.draw(bitmaps())
    n = data.draw(st.integers(1, nbits), label="n")
    tail_end = -(-n // BITS_PER_LONG) * BITS_PER_LONG
    value &= ~(_mask(tail_end) & ~_mask(n))
    bitmap = make(nbits, value)
    bitmap.bitmap_fill(n)
    _, after = linux_bitmap.call("bitmap_fill", value, n)
    assert bitmap.value == after
    assert bitmap.log == []


@ORACLE
@given(data=st.data(), align_mask=ALIGN_MASKS)
def test_bitmap_find_next_zero_area_matches_linux(
    linux_bitmap: LinuxBitmap, data: st.DataObject, align_mask: int
) -> None:
    nbits, value = data.draw(bitmaps())
    size = data.draw(st.integers(0, nbits), label="size")
    start = data.draw(st.integers(0, size + 10), label="start")
    nr = data.draw(st.integers(0, min(size + 4, 70)), label="nr")
    bitmap = make(nbits, value)
    expected, _ = linux_bitmap.call("bitmap_find_next_zero_area", value, size, start, nr, align_mask)
    off, _ = linux_bitmap.call("bitmap_find_next_zero_area_off", value, size, start, nr, align_mask, 0)
    assert expected == off  # the inline wrapper is _off with align_offset 0
    assert bitmap.bitmap_find_next_zero_area(size, start, nr, align_mask) == expected
    assert bitmap.log == []


def test_bitmap_find_next_zero_area_failure_returns_the_would_be_end(linux_bitmap: LinuxBitmap) -> None:
    # 16 bits, only [13, 16) free: an aligned-to-4 area of 3 would start at 16,
    # so the function returns end = 16 + 3 = 19 (> size), not size and not -1.
    value = _mask(13)
    bitmap = make(16, value)
    assert linux_bitmap.call("bitmap_find_next_zero_area", value, 16, 0, 3, 3)[0] == 19
    assert bitmap.bitmap_find_next_zero_area(16, 0, 3, 3) == 19
    # unaligned it fits at 13
    assert bitmap.bitmap_find_next_zero_area(16, 0, 3, 0) == 13
    assert bitmap.log == []


# ---------------------------------------------------------------------------
# Views: pcpu_index_alloc_map() returns ``alloc_map + index * BLOCK / BITS_PER_LONG``.
# ---------------------------------------------------------------------------


@ORACLE
@given(data=st.data(), fn=st.sampled_from(("find_next_bit", "find_next_zero_bit")))
def test_view_at_a_word_equals_c_pointer_arithmetic(
    linux_bitmap: LinuxBitmap, data: st.DataObject, fn: str
) -> None:
    nbits, value = data.draw(bitmaps(min_bits=BITS_PER_LONG))
    word = data.draw(st.integers(0, nbits // BITS_PER_LONG), label="word")
    base = word * BITS_PER_LONG
    size = data.draw(st.integers(0, nbits - base), label="size")
    offset = data.draw(st.integers(0, size + 10), label="offset")
    view = make(nbits, value).view(base)
    expected, _ = linux_bitmap.call(fn, value, size, offset, word=word)
    assert getattr(view, fn)(size, offset) == expected
    assert view.find_last_bit(size) == linux_bitmap.call("find_last_bit", value, size, word=word)[0]
    assert view.log == []


@ORACLE
@given(data=st.data())
def test_view_writes_at_a_word_equal_c_pointer_arithmetic(linux_bitmap: LinuxBitmap, data: st.DataObject) -> None:
    nbits, value = data.draw(bitmaps(min_bits=BITS_PER_LONG))
    word = data.draw(st.integers(0, nbits // BITS_PER_LONG), label="word")
    base = word * BITS_PER_LONG
    start = data.draw(st.integers(0, nbits - base), label="start")
    nr = data.draw(st.integers(0, nbits - base - start), label="nr")
    parent = make(nbits, value)
    view = parent.view(base)
    view.bitmap_set(start, nr)
    _, after = linux_bitmap.call("bitmap_set", value, start, nr, word=word)
    assert parent.value == after  # the view writes through to the parent's storage
    assert parent.log == []


@ORACLE
@given(data=st.data())
def test_view_at_any_bit_sees_the_map_shifted(linux_bitmap: LinuxBitmap, data: st.DataObject) -> None:
    # Small geometries put blocks at bit offsets that are not word multiples;
    # the model's view is then the map shifted down by ``base`` bits.
    nbits, value = data.draw(bitmaps())
    base = data.draw(st.integers(0, nbits), label="base")
    size = data.draw(st.integers(0, nbits - base), label="size")
    offset = data.draw(st.integers(0, size + 4), label="offset")
    view = make(nbits, value).view(base)
    shifted = value >> base
    for fn in ("find_next_bit", "find_next_zero_bit"):
        assert getattr(view, fn)(size, offset) == linux_bitmap.call(fn, shifted, size, offset)[0]
    assert view.find_last_bit(size) == linux_bitmap.call("find_last_bit", shifted, size)[0]
    assert view.bitmap_weight(size) == linux_bitmap.call("bitmap_weight", shifted, size)[0]
    if offset < size:
        assert view.test_bit(offset) == bool(linux_bitmap.call_nr("test_bit", offset, shifted)[0])
    assert view.log == []


# ---------------------------------------------------------------------------
# Out of bounds: recorded, reads see zeros, writes are dropped.
# ---------------------------------------------------------------------------


@ORACLE
@given(data=st.data(), fn=st.sampled_from(("find_next_bit", "find_next_zero_bit")))
def test_scan_past_the_end_is_recorded_and_reads_zeros(
    linux_bitmap: LinuxBitmap, data: st.DataObject, fn: str
) -> None:
    nbits, value = data.draw(bitmaps())
    size = data.draw(st.integers(nbits + 1, nbits + 100), label="size")
    offset = data.draw(st.integers(0, size + 10), label="offset")
    bitmap = make(nbits, value)
    # the C on a zeroed buffer: what the kernel reads from zeroed memory past the end
    expected, _ = linux_bitmap.call(fn, value, size, offset)
    assert getattr(bitmap, fn)(size, offset) == expected
    if offset < size:
        assert bitmap.log == [OutOfBounds("alloc_map", fn, offset, size, nbits)]
    else:  # offset >= size returns size without reading
        assert bitmap.log == []
    assert bitmap.value == value


def test_find_next_zero_bit_past_a_full_map_finds_the_first_bit_outside_it() -> None:
    # PATCH 10's window ``start + bit_size + PCPU_BITMAP_BLOCK_SIZE`` is not
    # clipped: on a full 16-bit map a scan up to 19 "finds" bit 16.
    bitmap = make(16, _mask(16))
    assert bitmap.find_next_zero_bit(19, 10) == 16
    assert bitmap.log == [OutOfBounds("alloc_map", "find_next_zero_bit", 10, 19, 16)]
    assert bitmap.log[0].describe() == (
        "find_next_zero_bit on alloc_map reads bits [10, 19) but alloc_map has 16 bits"
    )


@ORACLE
@given(data=st.data())
def test_find_last_bit_and_weight_past_the_end_are_recorded(linux_bitmap: LinuxBitmap, data: st.DataObject) -> None:
    nbits, value = data.draw(bitmaps())
    size = data.draw(st.integers(nbits + 1, nbits + 100), label="size")
    bitmap = make(nbits, value, "populated")
    assert bitmap.find_last_bit(size) == linux_bitmap.call("find_last_bit", value, size)[0]
    assert bitmap.bitmap_weight(size) == linux_bitmap.call("bitmap_weight", value, size)[0]
    assert bitmap.log == [
        OutOfBounds("populated", "find_last_bit", 0, size, nbits),
        OutOfBounds("populated", "bitmap_weight", 0, size, nbits),
    ]


@ORACLE
@given(data=st.data())
def test_single_bit_access_past_the_end_is_recorded(linux_bitmap: LinuxBitmap, data: st.DataObject) -> None:
    nbits, value = data.draw(bitmaps())
    nr = data.draw(st.integers(nbits, nbits + 100), label="nr")
    bitmap = make(nbits, value, "bound_map")
    assert bitmap.test_bit(nr) is False
    bitmap.set_bit(nr)
    _, c_after = linux_bitmap.call_nr("set_bit", nr, value)
    assert c_after != value  # the C did write past the end ...
    assert bitmap.value == value == c_after & _mask(nbits)  # ... the model dropped it
    bitmap.clear_bit(nr)
    assert bitmap.value == value
    assert bitmap.log == [
        OutOfBounds("bound_map", "test_bit", nr, nr + 1, nbits, write=False),
        OutOfBounds("bound_map", "set_bit", nr, nr + 1, nbits, write=True),
        OutOfBounds("bound_map", "clear_bit", nr, nr + 1, nbits, write=True),
    ]


@ORACLE
@given(data=st.data(), fn=st.sampled_from(("bitmap_set", "bitmap_clear")))
def test_range_write_past_the_end_is_recorded_and_dropped(
    linux_bitmap: LinuxBitmap, data: st.DataObject, fn: str
) -> None:
    nbits, value = data.draw(bitmaps())
    start = data.draw(st.integers(0, nbits + 20), label="start")
    nr = data.draw(st.integers(max(1, nbits + 1 - start), nbits + 60 - start), label="nr")
    bitmap = make(nbits, value)
    getattr(bitmap, fn)(start, nr)
    _, c_after = linux_bitmap.call(fn, value, start, nr)
    # in-bounds part written as the C writes it, the rest dropped
    assert bitmap.value == c_after & _mask(nbits)
    if fn == "bitmap_set":
        assert c_after >> nbits == _mask(nr) << start >> nbits  # what the C wrote outside
    assert bitmap.log == [OutOfBounds("alloc_map", fn, start, start + nr, nbits, write=True)]


def test_write_ending_exactly_at_the_end_is_not_recorded() -> None:
    bitmap = make(25, 0, "bound_map")  # nr_bits + 1 for a 24-bit alloc_map
    bitmap.bitmap_set(20, 5)
    bitmap.set_bit(24)
    bitmap.bitmap_clear(24, 1)
    assert bitmap.value == _mask(4) << 20
    assert bitmap.log == []
    bitmap.set_bit(25)
    assert bitmap.log == [OutOfBounds("bound_map", "set_bit", 25, 26, 25, write=True)]


@ORACLE
@given(data=st.data(), align_mask=ALIGN_MASKS)
def test_zero_area_search_past_the_end_is_recorded(
    linux_bitmap: LinuxBitmap, data: st.DataObject, align_mask: int
) -> None:
    nbits, value = data.draw(bitmaps())
    size = data.draw(st.integers(nbits + 1, nbits + 80), label="size")
    start = data.draw(st.integers(0, size - 1), label="start")
    nr = data.draw(st.integers(1, 40), label="nr")
    bitmap = make(nbits, value)
    expected, _ = linux_bitmap.call("bitmap_find_next_zero_area", value, size, start, nr, align_mask)
    assert bitmap.bitmap_find_next_zero_area(size, start, nr, align_mask) == expected
    # the first find_next_zero_bit(map, size, start) already reads [start, size) ⊄ [0, nbits)
    assert bitmap.log[0] == OutOfBounds("alloc_map", "find_next_zero_bit", start, size, nbits)
    assert all(
        e.function in ("find_next_zero_bit", "find_next_bit") and e.end > nbits and e.nbits == nbits
        for e in bitmap.log
    )


@ORACLE
@given(data=st.data())
def test_view_past_the_end_is_recorded_in_parent_coordinates(linux_bitmap: LinuxBitmap, data: st.DataObject) -> None:
    # pcpu_index_alloc_map(chunk, index) for an index at or past the last
    # block: the block-relative scan up to PCPU_BITMAP_BLOCK_SIZE leaves the map.
    nbits, value = data.draw(bitmaps())
    base = data.draw(st.integers(0, nbits + 16), label="base")
    size = data.draw(st.integers(max(1, nbits - base + 1), nbits - base + 40), label="size")
    offset = data.draw(st.integers(0, size - 1), label="offset")
    parent = make(nbits, value)
    view = parent.view(base)
    expected, _ = linux_bitmap.call("find_next_zero_bit", value >> base, size, offset)
    assert view.find_next_zero_bit(size, offset) == expected
    assert view.log is parent.log
    assert parent.log == [
        OutOfBounds("alloc_map", "find_next_zero_bit", base + offset, base + size, nbits, write=False)
    ]
    view.bitmap_set(offset, size - offset)
    assert parent.value == value | (_mask(size - offset) << (base + offset)) & _mask(nbits)
    assert parent.log[1] == OutOfBounds("alloc_map", "bitmap_set", base + offset, base + size, nbits, write=True)


def test_views_share_storage_and_log_with_their_map() -> None:
    parent = make(24, 0)
    block1 = parent.view(8)
    block2 = parent.view(16)
    block1.bitmap_set(2, 3)  # bits 10, 11, 12 of the map
    assert parent.value == 0b111 << 10
    assert block2.find_last_bit(8) == 8  # nothing set in block 2
    assert block1.find_next_bit(8, 0) == 2
    assert block2.view(4).base == 20  # views of views add up
    block2.find_next_bit(9, 0)  # one bit past the end of the map
    assert parent.log == [OutOfBounds("alloc_map", "find_next_bit", 16, 25, 24)]
    assert block1.log is parent.log


def test_value_setter_masks_to_nbits() -> None:
    bitmap = make(10, _mask(20))
    assert bitmap.value == _mask(10)
    assert bitmap.bits() == [1] * 10


@pytest.mark.parametrize("n", [1, 5, 64, 65, 130])
def test_bitmap_fill_of_a_zeroed_map(linux_bitmap: LinuxBitmap, n: int) -> None:
    bitmap = make(200, 0)
    bitmap.bitmap_fill(n)
    assert bitmap.value == linux_bitmap.call("bitmap_fill", 0, n)[1] == _mask(n)
