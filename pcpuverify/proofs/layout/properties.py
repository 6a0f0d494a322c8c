"""The layout properties: each a claim of the code or its comments, registered in ``LAYOUT_PROPERTIES``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import z3

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SHIFT, PCPU_MIN_ALLOC_SIZE
from pcpuverify.proofs.layout.encoding import (
    BV,
    INT_BITS,
    PAGE_ALIGNED,
    Bool,
    ChunkLayout,
    LayoutParams,
    SymLayout,
    contains,
    max_t_size_t,
    no_carry,
    overlaps,
    pcpu_align_reserved_region,
    ulong,
    ulong_of_int,
)
from pcpuverify.proofs.layout.preconditions import PRECONDITION_SETS

# -- properties ----------------------------------------------------------------------


@dataclass(frozen=True)
class Characterisation:
    """Which inputs break a property under one precondition set, proved alongside the property.

    ``kind`` "iff": pre => (not property <=> condition) -- exactly these inputs;
    ``kind`` "only-if": pre => (not property => condition) -- nothing else breaks it.
    Stated for the code as posted (v1); ``slow`` ones (minutes) run only when asked.
    """

    kind: str
    text: str
    condition: Callable[[SymLayout], Bool]
    slow: bool = False


@dataclass
class LayoutProperty:
    """One named claim about the layout, with per-set characterisations of the inputs that break it."""

    name: str
    statement: str
    source: str  # the C or the seed sentence it is about
    holds: Callable[[SymLayout], Bool]
    guard: Callable[[SymLayout], Bool]  # the case the property speaks about (vacuity)
    sets: tuple[str, ...]
    shows: tuple[str, ...]  # derived values worth printing with a counterexample
    reads_request: bool
    breaks: dict[str, Characterisation] = field(default_factory=dict)

    def breaks_when(
        self, *sets: str, text: str, kind: str = "iff", slow: bool = False
    ) -> Callable[[Callable[[SymLayout], Bool]], Callable[[SymLayout], Bool]]:
        """Attach a characterisation of the breaking inputs under ``sets`` (proved with the property)."""

        def attach(fn: Callable[[SymLayout], Bool]) -> Callable[[SymLayout], Bool]:
            for set_name in sets or tuple(PRECONDITION_SETS):
                self.breaks[set_name] = Characterisation(kind, text, fn, slow)
            return fn

        return attach


LAYOUT_PROPERTIES: dict[str, LayoutProperty] = {}


def layout_property(
    name: str,
    *,
    statement: str,
    source: str,
    guard: Callable[[SymLayout], Bool] | None = None,
    sets: tuple[str, ...] = tuple(PRECONDITION_SETS),
    shows: tuple[str, ...] = (),
    reads_request: bool = False,
) -> Callable[[Callable[[SymLayout], Bool]], LayoutProperty]:
    def register(fn: Callable[[SymLayout], Bool]) -> LayoutProperty:
        prop = LayoutProperty(
            name=name,
            statement=statement,
            source=source,
            holds=fn,
            guard=guard or (lambda L: z3.BoolVal(True)),
            sets=sets,
            shows=shows,
            reads_request=reads_request,
        )
        LAYOUT_PROPERTIES[name] = prop
        return prop

    return register


def _aligned_request(L: SymLayout) -> BV:
    return pcpu_align_reserved_region(L.x.static_size, L.x.req_reserved_size, L.p)


def _asks_reserved(L: SymLayout) -> Bool:
    return L.x.req_reserved_size != 0


# pcpu_align_reserved_region (PATCH 05) -------------------------------------------------


@layout_property(
    "align-reserved-region-ends-page-aligned",
    statement="static_size + pcpu_align_reserved_region(static_size, reserved_size) is page aligned"
    " (and 0 is returned for no reserved region)",
    source="PATCH 05: 'Size of reserved region required to make static_size + reserved_size page aligned.'",
    reads_request=True,
)
def _align_ends_page_aligned(L: SymLayout) -> Bool:
    r = _aligned_request(L)
    return z3.If(_asks_reserved(L), PAGE_ALIGNED(L.x.static_size + r, L.p), r == 0)


@layout_property(
    "align-reserved-region-never-shrinks",
    statement="pcpu_align_reserved_region never returns less than the reserved size asked for",
    source="PATCH 05: '@reserved_size: the minimum reserved region size'",
    guard=_asks_reserved,
    reads_request=True,
)
def _align_never_shrinks(L: SymLayout) -> Bool:
    return z3.Implies(_asks_reserved(L), z3.UGE(_aligned_request(L), L.x.req_reserved_size))


@layout_property(
    "align-reserved-region-adds-under-a-page",
    statement="pcpu_align_reserved_region adds less than one page to the reserved size",
    source="PATCH 05: 'up to an additional page of memory will be allocated to the reserved region'",
    guard=_asks_reserved,
    reads_request=True,
)
def _align_adds_under_a_page(L: SymLayout) -> Bool:
    r, q = _aligned_request(L), L.x.req_reserved_size
    return z3.Implies(_asks_reserved(L), z3.And(z3.UGE(r, q), z3.ULT(r - q, ulong(L.p.page_size))))


@layout_property(
    "align-reserved-region-pfn-align-no-wrap",
    statement="PFN_ALIGN(static_size + reserved_size) in pcpu_align_reserved_region does not wrap past 2^64",
    source="include/linux/pfn.h: PFN_ALIGN(x) (((unsigned long)(x) + (PAGE_SIZE - 1)) & PAGE_MASK)",
    guard=_asks_reserved,
    reads_request=True,
)
def _align_pfn_no_wrap(L: SymLayout) -> Bool:
    s, q = L.x.static_size, L.x.req_reserved_size
    return z3.Implies(_asks_reserved(L), no_carry(s + q, ulong(L.p.page_size - 1)))


@layout_property(
    "align-reserved-region-no-overflow",
    statement="pcpu_align_reserved_region's ssize_t arithmetic is exact: its size_t arguments fit ssize_t,"
    " static_size + reserved_size does not overflow (undefined behaviour), PFN_ALIGN does not wrap,"
    " and the result fits ssize_t",
    source="PATCH 05: static inline ssize_t pcpu_align_reserved_region(ssize_t static_size, ssize_t reserved_size)",
    guard=_asks_reserved,
    reads_request=True,
)
def _align_no_overflow(L: SymLayout) -> Bool:
    s, q = L.x.static_size, L.x.req_reserved_size
    zero = ulong(0)
    return z3.Implies(
        _asks_reserved(L),
        z3.And(
            s >= zero,  # signed: the size_t argument is below 2^63
            q >= zero,
            z3.BVAddNoOverflow(s, q, True),
            no_carry(s + q, ulong(L.p.page_size - 1)),
            _aligned_request(L) >= zero,
        ),
    )


# pcpu_build_alloc_info (PATCH 05) -------------------------------------------------------


@layout_property(
    "build-alloc-info-size-sum-no-wrap",
    statement="pcpu_build_alloc_info's size_sum = PFN_ALIGN(static_size + reserved_size + max(dyn_size, EARLY))"
    " is computed without wrapping past 2^64",
    source="PATCH 05: size_sum = PFN_ALIGN(static_size + reserved_size + max_t(size_t, dyn_size,"
    " PERCPU_DYNAMIC_EARLY_SIZE));",
    sets=("callers", "arch"),
    shows=("build_size_sum",),
    reads_request=True,
)
def _size_sum_no_wrap(L: SymLayout) -> Bool:
    s, r = L.x.static_size, L.build_reserved_size
    d = max_t_size_t(L.x.req_dyn_size, ulong(L.p.early_size))
    return z3.And(no_carry(s, r), no_carry(s + r, d), no_carry(s + r + d, ulong(L.p.page_size - 1)))


# pcpu_setup_first_chunk (PATCH 06..09) ---------------------------------------------------


@layout_property(
    "setup-size-sum-no-wrap",
    statement="pcpu_setup_first_chunk's size_sum = static_size + reserved_size + dyn_size does not wrap past"
    " 2^64, so PCPU_SETUP_BUG_ON(ai->unit_size < size_sum) compares the real sum",
    source="pcpu_setup_first_chunk: size_t size_sum = ai->static_size + ai->reserved_size + dyn_size;",
    shows=("size_sum",),
)
def _setup_size_sum_no_wrap(L: SymLayout) -> Bool:
    s, r = L.x.static_size, L.x.reserved_size
    return z3.And(no_carry(s, r), no_carry(s + r, L.x.dyn_size))


_OFFSET = ("pcpu_reserved_offset", "begin_fill_bits")


@layout_property(
    "reserved-offset-below-page",
    statement="pcpu_reserved_offset < PAGE_SIZE",
    source="PATCH 06: 'the amount the pcpu_reserved_chunk->base_addr is push back into the static region"
    " for the base_addr to be page aligned'",
    shows=_OFFSET,
)
def _offset_below_page(L: SymLayout) -> Bool:
    return z3.ULT(L.pcpu_reserved_offset, ulong(L.p.page_size))


@layout_property(
    "reserved-offset-aligned",
    statement="pcpu_reserved_offset is a multiple of PCPU_MIN_ALLOC_SIZE",
    source="design card: 'the reserved offset is aligned'; PATCH 09: begin_fill_bits ="
    " pcpu_reserved_offset / PCPU_MIN_ALLOC_SIZE",
    shows=_OFFSET,
)
def _offset_aligned(L: SymLayout) -> Bool:
    return L.pcpu_reserved_offset & ulong(PCPU_MIN_ALLOC_SIZE - 1) == 0


@layout_property(
    "first-chunk-static-region-not-allocatable",
    statement="no byte the first (reserved or dynamic) chunk can hand out lies in the static region"
    " [base_addr, base_addr + static_size)",
    source="PATCH 09: 'If the beginning of the reserved region overlaps the end of the static region,"
    " hide that portion in the metadata.'",
    shows=("pcpu_reserved_offset", "begin_fill_bits", "first.alloc_start", "first.alloc_len"),
)
def _first_not_static(L: SymLayout) -> Bool:
    return z3.Not(overlaps(L.x.base_addr, L.x.static_size, L.first.alloc_start, L.first.alloc_len))


@layout_property(
    "dyn-chunk-static-region-not-allocatable",
    statement="no byte the dynamic chunk of a reserved layout can hand out lies in the static region",
    source="PATCH 06: chunk->base_addr = base_addr + ai->static_size + ai->reserved_size;",
    guard=lambda L: L.has_reserved_chunk,
    shows=("dyn.alloc_start", "dyn.alloc_len"),
)
def _dyn_not_static(L: SymLayout) -> Bool:
    return z3.Implies(
        L.has_reserved_chunk,
        z3.Not(overlaps(L.x.base_addr, L.x.static_size, L.dyn.alloc_start, L.dyn.alloc_len)),
    )


@layout_property(
    "first-chunk-pages-cover-region",
    statement="chunk_pages = map_size_bytes >> PAGE_SHIFT drops no byte: map_size_bytes"
    " = (reserved_size ?: dyn_size) + pcpu_reserved_offset is a whole number of pages",
    source="PATCH 08: chunk_pages = map_size_bytes >> PAGE_SHIFT;",
    shows=("map_size_bytes", "first.exact_pages"),
)
def _first_covers(L: SymLayout) -> Bool:
    return PAGE_ALIGNED(L.map_size_bytes, L.p)


@layout_property(
    "dyn-chunk-pages-cover-region",
    statement="chunk_pages = dyn_size >> PAGE_SHIFT drops no byte of a reserved layout's dynamic region",
    source="PATCH 08: chunk_pages = dyn_size >> PAGE_SHIFT;  (setup comment: 'Both the start and the end"
    " are expected to be page aligned.')",
    guard=lambda L: L.has_reserved_chunk,
    shows=("dyn.exact_pages",),
)
def _dyn_covers(L: SymLayout) -> Bool:
    return z3.Implies(L.has_reserved_chunk, PAGE_ALIGNED(L.x.dyn_size, L.p))


def _region_of_first(L: SymLayout) -> tuple[BV, BV]:
    """The bytes the first chunk serves: from its page-aligned base to the end of the reserved (or dynamic) region."""
    return L.aligned_addr, L.map_size_bytes


@layout_property(
    "first-chunk-inside-its-region",
    statement="every byte the first chunk can hand out lies in [aligned_addr, base_addr + static_size"
    " + (reserved_size ?: dyn_size)): the chunk ends where its region ends",
    source="PATCH 06: schunk->base_addr = (void *)aligned_addr; nr_pages = map_size_bytes >> PAGE_SHIFT",
    shows=("map_size_bytes", "first.chunk_pages", "first.nr_bits", "first.alloc_len"),
)
def _first_inside(L: SymLayout) -> Bool:
    start, length = _region_of_first(L)
    return contains(start, length, L.first.alloc_start, L.first.alloc_len)


@layout_property(
    "dyn-chunk-starts-at-reserved-end",
    statement="the dynamic chunk of a reserved layout starts exactly where the reserved chunk ends"
    " (pcpu_reserved_chunk->base_addr + nr_pages * PAGE_SIZE, as pcpu_addr_in_reserved_chunk computes it)",
    source="PATCH 06: addr < first_start + pcpu_reserved_chunk->nr_pages * PAGE_SIZE;"
    " chunk->base_addr = base_addr + ai->static_size + ai->reserved_size;",
    guard=lambda L: L.has_reserved_chunk,
    shows=("map_size_bytes", "first.chunk_pages"),
)
def _dyn_starts_at_reserved_end(L: SymLayout) -> Bool:
    # int nr_pages * unsigned long PAGE_SIZE: the int is sign-extended
    reserved_end = L.first.base_addr + (ulong_of_int(L.first.chunk_pages) << L.p.page_shift)
    return z3.Implies(L.has_reserved_chunk, L.dyn.base_addr == reserved_end)


@layout_property(
    "dyn-chunk-inside-its-region",
    statement="every byte the dynamic chunk of a reserved layout can hand out lies in"
    " [base_addr + static_size + reserved_size, ... + dyn_size)",
    source="PATCH 06: chunk->base_addr = base_addr + ai->static_size + ai->reserved_size;"
    " chunk->nr_pages = dyn_size >> PAGE_SHIFT",
    guard=lambda L: L.has_reserved_chunk,
    shows=("dyn.chunk_pages", "dyn.alloc_len"),
)
def _dyn_inside(L: SymLayout) -> Bool:
    return z3.Implies(
        L.has_reserved_chunk, contains(L.dyn.base_addr, L.x.dyn_size, L.dyn.alloc_start, L.dyn.alloc_len)
    )


@layout_property(
    "dyn-chunk-disjoint-from-first-chunk",
    statement="the reserved chunk and the dynamic chunk of a reserved layout hand out no common byte",
    source="setup comment: 'one to serve the reserved area and the other for the dynamic area ... stay away"
    " from each other'",
    guard=lambda L: L.has_reserved_chunk,
    shows=("first.alloc_start", "first.alloc_len", "dyn.alloc_start", "dyn.alloc_len"),
)
def _dyn_disjoint(L: SymLayout) -> Bool:
    return z3.Implies(
        L.has_reserved_chunk,
        z3.Not(overlaps(L.first.alloc_start, L.first.alloc_len, L.dyn.alloc_start, L.dyn.alloc_len)),
    )


@layout_property(
    "chunks-inside-unit",
    statement="every byte either chunk can hand out lies in the unit [base_addr, base_addr + unit_size)",
    source="setup comment: '@ai->unit_size ... equal to or larger than @ai->static_size +"
    " @ai->reserved_size + @ai->dyn_size'",
    shows=("size_sum", "first.alloc_len", "dyn.alloc_start", "dyn.alloc_len"),
)
def _inside_unit(L: SymLayout) -> Bool:
    b, u = L.x.base_addr, L.x.unit_size
    return z3.And(
        contains(b, u, L.first.alloc_start, L.first.alloc_len),
        z3.Implies(L.has_reserved_chunk, contains(b, u, L.dyn.alloc_start, L.dyn.alloc_len)),
    )


@layout_property(
    "first-chunk-begin-fill-inside-bitmap",
    statement="begin_fill_bits <= map_size_bits, so bitmap_fill(alloc_map, begin_fill_bits) and"
    " set_bit(begin_fill_bits, bound_map) stay inside the maps and free_bits is not negative",
    source="PATCH 09: bitmap_fill(chunk->alloc_map, begin_fill_bits); set_bit(begin_fill_bits, chunk->bound_map);",
    shows=("begin_fill_bits", "first.chunk_pages", "first.nr_bits", "first.free_bits"),
)
def _begin_fill_inside(L: SymLayout) -> Bool:
    return z3.And(
        ulong_of_int(L.first.nr_bits) >= L.begin_fill_bits,  # signed: int widened
        L.first.free_bits >= 0,
    )


@layout_property(
    "chunk-sizes-whole-blocks",
    statement="for both chunks pcpu_nr_pages_to_blocks(chunk) * PCPU_BITMAP_BLOCK_SIZE =="
    " pcpu_nr_pages_to_bits(chunk): the md_blocks array covers the bitmap exactly",
    source="PATCH 09: md_blocks = memblock_virt_alloc(pcpu_nr_pages_to_blocks(chunk) * sizeof(...));"
    " map_size_bits = pcpu_nr_pages_to_bits(chunk);",
    shows=("first.nr_blocks", "first.nr_bits", "dyn.nr_blocks", "dyn.nr_bits"),
)
def _whole_blocks(L: SymLayout) -> Bool:
    def whole(c: ChunkLayout) -> Bool:
        # int * unsigned long compared with an int: both widened to unsigned long
        return ulong_of_int(c.nr_blocks) << (L.p.page_shift - PCPU_MIN_ALLOC_SHIFT) == ulong_of_int(c.nr_bits)

    return z3.And(whole(L.first), z3.Implies(L.has_reserved_chunk, whole(L.dyn)))


def _int_exact(c: ChunkLayout, begin_fill_bits: BV, p: LayoutParams) -> Bool:
    """A chunk's int sizes hold the exact values: pages, bits, blocks, free bits, byte offsets."""
    int_max = ulong((1 << (INT_BITS - 1)) - 1)
    exact_bits = c.exact_pages << (p.page_shift - PCPU_MIN_ALLOC_SHIFT)  # < 2^62: exact in 64 bits
    return z3.And(
        z3.ULE(c.exact_pages, int_max),  # int chunk_pages
        z3.ULE(exact_bits, int_max),  # int pcpu_nr_pages_to_bits(), int map_size_bits + 1 below
        ulong_of_int(c.nr_bits) == exact_bits,
        ulong_of_int(c.nr_blocks) == c.exact_pages,
        # pcpu_alloc_area: return bit_off * PCPU_MIN_ALLOC_SIZE (int * int): the last bit's offset fits
        z3.ULE(exact_bits << PCPU_MIN_ALLOC_SHIFT, ulong(1 << (INT_BITS - 1))),
        # free_bits = nr_bits - begin_fill_bits as an int
        ulong_of_int(c.free_bits) == exact_bits - begin_fill_bits,
    )


@layout_property(
    "bitmap-int-arithmetic-no-overflow",
    statement="the int quantities of both chunks (chunk_pages/nr_pages, pcpu_nr_pages_to_bits,"
    " pcpu_nr_pages_to_blocks, free_bits/contig_hint, byte offsets bit_off * PCPU_MIN_ALLOC_SIZE)"
    " equal the exact values: nothing is truncated to 32 bits or overflows",
    source="PATCH 09: static inline int pcpu_nr_pages_to_bits(struct pcpu_chunk *chunk); int chunk_pages;"
    " return bit_off * PCPU_MIN_ALLOC_SIZE;",
    shows=("map_size_bytes", "first.chunk_pages", "first.nr_bits", "dyn.chunk_pages", "dyn.nr_bits"),
)
def _int_no_overflow(L: SymLayout) -> Bool:
    return z3.And(
        _int_exact(L.first, L.begin_fill_bits, L.p),
        z3.Implies(L.has_reserved_chunk, _int_exact(L.dyn, ulong(0), L.p)),
    )


@layout_property(
    "unit-int-arithmetic-no-overflow",
    statement="pcpu_unit_pages = unit_size >> PAGE_SHIFT, pcpu_unit_size = pcpu_unit_pages << PAGE_SHIFT"
    " and pcpu_pages_to_bits(pcpu_unit_pages) (all int) hold the exact values",
    source="pcpu_setup_first_chunk: static int pcpu_unit_pages, pcpu_unit_size;"
    " pcpu_nr_slots = __pcpu_size_to_slot(pcpu_pages_to_bits(pcpu_unit_pages)) + 2;",
    shows=("pcpu_unit_pages", "pcpu_unit_size", "unit_bits"),
)
def _unit_int_no_overflow(L: SymLayout) -> Bool:
    int_max = ulong((1 << (INT_BITS - 1)) - 1)
    pages = z3.LShR(L.x.unit_size, L.p.page_shift)
    return z3.And(
        z3.ULE(pages << L.p.page_shift, int_max),  # pcpu_unit_size, the largest of the three
        z3.ULE(pages << (L.p.page_shift - PCPU_MIN_ALLOC_SHIFT), int_max),
    )
