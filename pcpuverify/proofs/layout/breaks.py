"""Which inputs break which property in the posted code (v1, v1-patch09).

Each characterisation is proved, not assumed."""

from __future__ import annotations

import z3

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SHIFT, PCPU_MIN_ALLOC_SIZE
from pcpuverify.proofs.layout.encoding import (
    BITS_PER_LONG,
    BV,
    INT_BITS,
    Bool,
    ChunkLayout,
    SymLayout,
    max_t_size_t,
    no_carry,
    offset_in_page,
    ulong,
    ulong_of_int,
)
from pcpuverify.proofs.layout.properties import LAYOUT_PROPERTIES, _asks_reserved

# -- which inputs break what (v1's code) ------------------------------------------------
#
# Each condition below is proved, not assumed: ``prove_layout_property`` checks
# ``pre => (not property <=> condition)`` (or ``=>`` for "only-if") under its set.

P = LAYOUT_PROPERTIES


def _carry(a: BV, b: BV) -> Bool:
    return z3.Not(no_carry(a, b))


def _sum_above_2_64(a: BV, b: BV) -> Bool:
    """``a + b > 2^64`` as integers (the sum wraps and does not land exactly on 0)."""
    return z3.And(_carry(a, b), a + b != 0)


def _round_up_pad(L: SymLayout) -> BV:
    """What PFN_ALIGN adds to static_size + reserved_size: ``-(s + q) mod PAGE_SIZE``."""
    return (ulong(0) - (L.x.static_size + L.x.req_reserved_size)) & ulong(L.p.page_size - 1)


def _int_pages_limit(L: SymLayout) -> int:
    """Pages whose bit count first overflows an int: 2^31 / PCPU_BITMAP_BLOCK_SIZE."""
    return 1 << (INT_BITS - 1 - (L.p.page_shift - PCPU_MIN_ALLOC_SHIFT))


@P["align-reserved-region-never-shrinks"].breaks_when(
    text="reserved_size + (-(static_size + reserved_size) mod PAGE_SIZE) >= 2^64: a reserved_size within a page"
    " of 2^64 whose round-up to the page passes 2^64 (the result wraps to a small value)"
)
@P["align-reserved-region-adds-under-a-page"].breaks_when(
    text="the same inputs as align-reserved-region-never-shrinks: reserved_size + (-(static_size +"
    " reserved_size) mod PAGE_SIZE) >= 2^64"
)
def _shrinks(L: SymLayout) -> Bool:
    return z3.And(_asks_reserved(L), _carry(L.x.req_reserved_size, _round_up_pad(L)))


@P["align-reserved-region-pfn-align-no-wrap"].breaks_when(
    text="reserved_size != 0 and (static_size + reserved_size) mod 2^64 > 2^64 - PAGE_SIZE"
)
def _pfn_wraps(L: SymLayout) -> Bool:
    return z3.And(_asks_reserved(L), z3.UGT(L.x.static_size + L.x.req_reserved_size, ulong(-L.p.page_size)))


@P["align-reserved-region-no-overflow"].breaks_when(
    text="reserved_size != 0 and static_size + reserved_size >= 2^63 (as integers): an argument or the"
    " ssize_t sum leaves ssize_t (static_size != 0, as CONFIG_SMP's check asks)"
)
def _ssize_overflow(L: SymLayout) -> Bool:
    s, q, top = L.x.static_size, L.x.req_reserved_size, ulong(1 << (BITS_PER_LONG - 1))
    return z3.And(_asks_reserved(L), z3.Not(z3.And(z3.ULT(s, top), z3.ULT(q, top), z3.ULT(s + q, top))))


@P["build-alloc-info-size-sum-no-wrap"].breaks_when(
    text="static_size + pcpu_align_reserved_region(static_size, reserved_size) + max(dyn_size,"
    " PERCPU_DYNAMIC_EARLY_SIZE) > 2^64 - PAGE_SIZE (as integers, the aligned reserved size as computed)"
)
def _build_sum_wraps(L: SymLayout) -> Bool:
    wide = BITS_PER_LONG + 2
    d = max_t_size_t(L.x.req_dyn_size, ulong(L.p.early_size))
    total = z3.ZeroExt(2, L.x.static_size) + z3.ZeroExt(2, L.build_reserved_size) + z3.ZeroExt(2, d)
    return z3.UGT(total, z3.BitVecVal((1 << 64) - L.p.page_size, wide))


@P["setup-size-sum-no-wrap"].breaks_when(text="static_size + reserved_size + dyn_size >= 2^64 (as integers)")
def _setup_sum_wraps(L: SymLayout) -> Bool:
    total = z3.ZeroExt(2, L.x.static_size) + z3.ZeroExt(2, L.x.reserved_size) + z3.ZeroExt(2, L.x.dyn_size)
    return z3.UGE(total, z3.BitVecVal(1 << 64, BITS_PER_LONG + 2))


@P["reserved-offset-aligned"].breaks_when(text="static_size % 4 != 0")
def _static_unaligned(L: SymLayout) -> Bool:
    return L.x.static_size & ulong(PCPU_MIN_ALLOC_SIZE - 1) != 0


@P["first-chunk-static-region-not-allocatable"].breaks_when(
    text="the first chunk hands out any byte and either static_size % 4 != 0 (the bit holding the last"
    " 1-3 static bytes is left free: begin_fill_bits rounds down), or (static_size & ~3) + its bytes > 2^64"
    " (its range wraps the address space onto base_addr)"
)
def _first_overlaps_static(L: SymLayout) -> Bool:
    s = L.x.static_size
    return z3.And(
        L.first.alloc_len != 0,
        z3.Or(_static_unaligned(L), _sum_above_2_64(s & ulong(~(PCPU_MIN_ALLOC_SIZE - 1)), L.first.alloc_len)),
    )


@P["dyn-chunk-static-region-not-allocatable"].breaks_when(
    text="reserved_size != 0, the dynamic chunk hands out any byte, and static_size + reserved_size >= 2^64,"
    " or (static_size + reserved_size) + its bytes > 2^64: only address-space wraps"
)
def _dyn_overlaps_static(L: SymLayout) -> Bool:
    s, r = L.x.static_size, L.x.reserved_size
    return z3.And(r != 0, L.dyn.alloc_len != 0, z3.Or(_carry(s, r), _sum_above_2_64(s + r, L.dyn.alloc_len)))


@P["first-chunk-pages-cover-region"].breaks_when(
    text="reserved_size == 0 and static_size + dyn_size is not a multiple of PAGE_SIZE (the dynamic region"
    " does not end on a page; a reserved region always does, by the PAGE_ALIGNED check)"
)
def _first_truncated(L: SymLayout) -> Bool:
    return z3.And(L.x.reserved_size == 0, offset_in_page(L.x.static_size + L.x.dyn_size, L.p) != 0)


@P["dyn-chunk-pages-cover-region"].breaks_when(text="reserved_size != 0 and dyn_size % PAGE_SIZE != 0")
def _dyn_truncated(L: SymLayout) -> Bool:
    return z3.And(L.x.reserved_size != 0, offset_in_page(L.x.dyn_size, L.p) != 0)


@P["dyn-chunk-starts-at-reserved-end"].breaks_when(
    text="reserved_size != 0 and 2^31 <= map_size_bytes >> PAGE_SHIFT < 2^(64-PAGE_SHIFT) - 2^31"
    " (int chunk_pages cannot hold the reserved chunk's page count: 8 TiB and more at 4 KiB pages)"
)
def _reserved_end_truncated(L: SymLayout) -> Bool:
    e = L.first.exact_pages
    return z3.And(
        L.x.reserved_size != 0,
        z3.UGE(e, ulong(1 << 31)),
        z3.ULT(e, ulong((1 << (BITS_PER_LONG - L.p.page_shift)) - (1 << 31))),
    )


@P["chunks-inside-unit"].breaks_when(
    text="static_size + reserved_size + dyn_size >= 2^64: size_sum wraps, so PCPU_SETUP_BUG_ON(ai->unit_size"
    " < size_sum) compares a wrapped sum",
    kind="only-if",
    slow=True,  # minutes: the solver must see that int truncation only ever shrinks a chunk
)
def _size_sum_wraps(L: SymLayout) -> Bool:
    s, r, d = L.x.static_size, L.x.reserved_size, L.x.dyn_size
    return z3.Or(_carry(s, r), _carry(s + r, d))


@P["first-chunk-begin-fill-inside-bitmap"].breaks_when(
    text="begin_fill_bits > 0 and the first chunk has no page (map_size_bytes < PAGE_SIZE), or"
    " (map_size_bytes >> PAGE_SHIFT) * PCPU_BITMAP_BLOCK_SIZE >= 2^31 and its int truncation is below"
    " begin_fill_bits (a chunk of 8 GiB or more)"
)
def _begin_fill_outside(L: SymLayout) -> Bool:
    exact_bits = L.first.exact_pages << (L.p.page_shift - PCPU_MIN_ALLOC_SHIFT)
    return z3.Or(
        z3.And(L.begin_fill_bits != 0, L.first.exact_pages == 0),
        z3.And(z3.UGE(exact_bits, ulong(1 << 31)), ulong_of_int(L.first.nr_bits) < L.begin_fill_bits),
    )


@P["chunk-sizes-whole-blocks"].breaks_when(
    text="the int chunk_pages of the first chunk, or with a reserved region of the dynamic chunk, lies outside"
    " [-2^31/PCPU_BITMAP_BLOCK_SIZE, 2^31/PCPU_BITMAP_BLOCK_SIZE) (2^21 pages = 8 GiB at 4 KiB pages):"
    " pcpu_nr_pages_to_bits overflows int while pcpu_nr_pages_to_blocks does not"
)
def _blocks_mismatch(L: SymLayout) -> Bool:
    limit = _int_pages_limit(L)

    def outside(c: ChunkLayout) -> Bool:
        return z3.Not(z3.And(c.chunk_pages >= -limit, c.chunk_pages < limit))

    return z3.Or(outside(L.first), z3.And(L.has_reserved_chunk, outside(L.dyn)))


@P["bitmap-int-arithmetic-no-overflow"].breaks_when(
    text="the first chunk, or with a reserved region the dynamic chunk, spans more than 2 GiB:"
    " (map_size_bytes >> PAGE_SHIFT) * PAGE_SIZE > 2^31 or (dyn_size >> PAGE_SHIFT) * PAGE_SIZE > 2^31"
    " (the int byte offset bit_off * PCPU_MIN_ALLOC_SIZE overflows first)"
)
def _chunk_over_2g(L: SymLayout) -> Bool:
    def big(c: ChunkLayout) -> Bool:
        return z3.UGT(c.exact_pages << L.p.page_shift, ulong(1 << 31))

    return z3.Or(big(L.first), z3.And(L.has_reserved_chunk, big(L.dyn)))


@P["unit-int-arithmetic-no-overflow"].breaks_when(text="unit_size >= 2^31 (2 GiB)")
def _unit_over_2g(L: SymLayout) -> Bool:
    return z3.UGE(L.x.unit_size, ulong(1 << 31))
