"""The first-chunk layout as 64-bit C arithmetic: parameters, the C conversions, the symbolic layout.

``pcpu_align_reserved_region`` (PATCH 05), the size part of
``pcpu_build_alloc_info`` and the metadata part of
``pcpu_setup_first_chunk`` (PATCH 06..09) in QF_BV with the C types they
have (see the package docstring for the conventions).
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SHIFT
from pcpuverify.symbolic.setup import PostedSetup
from pcpuverify.symbolic.subjects import SubjectError, subject

BITS_PER_LONG = 64  # unsigned long, size_t, ssize_t, pointers
INT_BITS = 32  # C int
MASK64 = (1 << BITS_PER_LONG) - 1

# include/linux/percpu.h (4.12/4.13), 64-bit
PERCPU_MODULE_RESERVE = 8 << 10  # CONFIG_MODULES
PERCPU_DYNAMIC_EARLY_SIZE = 12 << 10
PERCPU_DYNAMIC_RESERVE = 28 << 10  # BITS_PER_LONG > 32

BV = z3.BitVecRef
Bool = z3.BoolRef


# -- parameters ----------------------------------------------------------------------


@dataclass(frozen=True)
class LayoutParams:
    """The page size and the header constants the layout depends on.

    ``kernel(page_size)`` uses the kernel's constants; ``scaled(page_size)``
    the ones ``model/first_chunk.check_layout`` uses for a shrunken page
    (``PERCPU_DYNAMIC_EARLY_SIZE`` = one page, no ``PCPU_MIN_UNIT_SIZE``),
    so that the encoding can be held to the model on small pages.
    """

    page_size: int
    early_size: int  # PERCPU_DYNAMIC_EARLY_SIZE
    min_unit_size: int  # PCPU_MIN_UNIT_SIZE = PFN_ALIGN(32 << 10)
    module_reserve: int  # PERCPU_MODULE_RESERVE
    dynamic_reserve: int  # PERCPU_DYNAMIC_RESERVE
    smp: bool = True  # CONFIG_SMP: PCPU_SETUP_BUG_ON(!ai->static_size)
    scaled_constants: bool = False
    variant: str = "v1"  # the subject whose pcpu_setup_first_chunk this is (its Subject.layout)

    def __post_init__(self) -> None:
        p = self.page_size
        if not (isinstance(p, int) and p >= 16 and p & (p - 1) == 0 and p <= 1 << 21):
            raise ValueError(
                f"page_size must be a power of two between 16 and {1 << 21} bytes (got {p!r});"
                " PCPU_BITMAP_BLOCK_SIZE = PAGE_SIZE / 4 must be at least 4 bits"
            )
        if subject(self.variant).layout is None:
            raise SubjectError(f"variant {self.variant!r} has no symbolic first-chunk setup: no layout proofs")

    @property
    def setup(self) -> type[PostedSetup]:
        """The variant's ``pcpu_setup_first_chunk`` lines that differ between variants."""
        layout = subject(self.variant).layout
        assert layout is not None  # __post_init__ refused a subject without one
        return layout

    @classmethod
    def kernel(cls, page_size: int = 4096, smp: bool = True, variant: str = "v1") -> LayoutParams:
        return cls(
            variant=variant,
            page_size=page_size,
            early_size=PERCPU_DYNAMIC_EARLY_SIZE,
            min_unit_size=_pfn_align_int(32 << 10, page_size),
            module_reserve=PERCPU_MODULE_RESERVE,
            dynamic_reserve=PERCPU_DYNAMIC_RESERVE,
            smp=smp,
        )

    @classmethod
    def scaled(cls, page_size: int, variant: str = "v1") -> LayoutParams:
        """``check_layout``'s constants: EARLY one page, MIN_UNIT dropped, reserves kept in pages."""
        return cls(
            variant=variant,
            page_size=page_size,
            early_size=page_size,
            min_unit_size=0,
            module_reserve=2 * page_size,
            dynamic_reserve=7 * page_size,
            scaled_constants=True,
        )

    @property
    def page_shift(self) -> int:
        return self.page_size.bit_length() - 1

    @property
    def block_bits(self) -> int:
        """PATCH 09 ``PCPU_BITMAP_BLOCK_SIZE = PAGE_SIZE >> PCPU_MIN_ALLOC_SHIFT`` (bits)."""
        return self.page_size >> PCPU_MIN_ALLOC_SHIFT

    @property
    def geometry(self) -> str:
        return f"page{self.page_size}" + ("-scaled" if self.scaled_constants else "")


def _pfn_align_int(x: int, page_size: int) -> int:
    return (x + page_size - 1) & ~(page_size - 1) & MASK64


# -- C arithmetic at 64 bits -------------------------------------------------------


def ulong(v: int) -> BV:
    return z3.BitVecVal(v & MASK64, BITS_PER_LONG)


def int_of_ulong(x: BV) -> BV:
    """``(int)x``: GCC keeps the low 32 bits."""
    return z3.Extract(INT_BITS - 1, 0, x)


def ulong_of_int(i: BV) -> BV:
    """``(unsigned long)i`` for an ``int`` i: sign extension."""
    return z3.SignExt(BITS_PER_LONG - INT_BITS, i)


def PFN_ALIGN(x: BV, p: LayoutParams) -> BV:
    """include/linux/pfn.h: ``(((unsigned long)(x) + (PAGE_SIZE - 1)) & PAGE_MASK)``."""
    return (x + ulong(p.page_size - 1)) & ulong(~(p.page_size - 1))


def offset_in_page(x: BV, p: LayoutParams) -> BV:
    return x & ulong(p.page_size - 1)


def PAGE_ALIGNED(x: BV, p: LayoutParams) -> Bool:
    return offset_in_page(x, p) == 0


def max_t_size_t(a: BV, b: BV) -> BV:
    return z3.If(z3.UGE(a, b), a, b)


def no_carry(a: BV, b: BV) -> Bool:
    """``a + b`` as unsigned 64-bit values does not wrap."""
    return z3.BVAddNoOverflow(a, b, False)


def pcpu_pages_to_bits(pages: BV, p: LayoutParams) -> BV:
    """PATCH 09 ``int pcpu_pages_to_bits(int pages)``: ``pages * PAGE_SIZE / PCPU_MIN_ALLOC_SIZE``.

    ``PAGE_SIZE`` is unsigned long: the product and quotient are 64-bit
    unsigned; the ``int`` return keeps the low 32 bits.
    """
    return int_of_ulong(z3.LShR(ulong_of_int(pages) << p.page_shift, PCPU_MIN_ALLOC_SHIFT))


def pcpu_nr_pages_to_blocks(pages: BV, p: LayoutParams) -> BV:
    """PATCH 09: ``nr_pages * PAGE_SIZE / PCPU_MIN_ALLOC_SIZE / PCPU_BITMAP_BLOCK_SIZE`` (unsigned long, to int)."""
    bits = z3.LShR(ulong_of_int(pages) << p.page_shift, PCPU_MIN_ALLOC_SHIFT)
    # unsigned division by a power of two: a logical shift (cheaper to bit-blast than a divider)
    return int_of_ulong(z3.LShR(bits, p.page_shift - PCPU_MIN_ALLOC_SHIFT))


def pcpu_begin_fill_bits(pcpu_reserved_offset: BV, p: LayoutParams) -> BV:
    """``begin_fill_bits`` as the variant's setup computes it (PATCH 09 truncates; ``fixed`` rounds up)."""
    return p.setup.begin_fill_bits(pcpu_reserved_offset)


def pcpu_align_reserved_region(static_size: BV, reserved_size: BV, p: LayoutParams) -> BV:
    """PATCH 05 (include/linux/percpu.h), ``ssize_t`` in and out -- the same bits as unsigned.

    ``if (!reserved_size) return 0;
    return PFN_ALIGN(static_size + reserved_size) - static_size;``
    """
    return z3.If(reserved_size == 0, ulong(0), PFN_ALIGN(static_size + reserved_size, p) - static_size)


# -- the symbolic layout -------------------------------------------------------------


@dataclass(frozen=True)
class LayoutInputs:
    """What the layout depends on: ``ai``'s sizes, ``base_addr``, and the caller's request."""

    base_addr: BV
    static_size: BV  # ai->static_size (= __per_cpu_end - __per_cpu_start)
    reserved_size: BV  # ai->reserved_size
    dyn_size: BV  # ai->dyn_size
    unit_size: BV  # ai->unit_size
    req_reserved_size: BV  # pcpu_build_alloc_info(reserved_size, ...)
    req_dyn_size: BV  # pcpu_build_alloc_info(..., dyn_size, ...)

    NAMES = (
        "base_addr",
        "static_size",
        "reserved_size",
        "dyn_size",
        "unit_size",
        "req_reserved_size",
        "req_dyn_size",
    )

    @classmethod
    def fresh(cls) -> LayoutInputs:
        label = {"req_reserved_size": "req.reserved_size", "req_dyn_size": "req.dyn_size", "base_addr": "base_addr"}
        return cls(**{n: z3.BitVec(label.get(n, f"ai.{n}"), BITS_PER_LONG) for n in cls.NAMES})

    @classmethod
    def const(cls, **values: int) -> LayoutInputs:
        return cls(**{n: ulong(values.get(n, 0)) for n in cls.NAMES})

    def terms(self) -> dict[str, BV]:
        return {n: getattr(self, n) for n in self.NAMES}


@dataclass(frozen=True)
class ChunkLayout:
    """One chunk ``pcpu_setup_first_chunk`` makes: its ``int`` sizes and the bytes its bitmap can hand out."""

    base_addr: BV  # chunk->base_addr
    exact_pages: BV  # the unsigned long page count before it is stored in an int
    chunk_pages: BV  # int chunk_pages = chunk->nr_pages
    nr_bits: BV  # int pcpu_nr_pages_to_bits(chunk) = map_size_bits
    nr_blocks: BV  # int pcpu_nr_pages_to_blocks(chunk)
    free_bits: BV  # int chunk->free_bits (= contig_hint as set)
    first_bit: BV  # first allocatable bit (unsigned long)
    alloc_start: BV  # address of the first allocatable byte
    alloc_len: BV  # allocatable bytes (0 if none)


@dataclass(frozen=True)
class SymLayout:
    """``pcpu_build_alloc_info``'s sizes and ``pcpu_setup_first_chunk``'s layout, as terms over ``LayoutInputs``."""

    p: LayoutParams
    x: LayoutInputs
    # pcpu_build_alloc_info (PATCH 05)
    build_reserved_size: BV
    build_size_sum: BV
    build_dyn_size: BV
    # pcpu_setup_first_chunk (PATCH 06..09)
    size_sum: BV
    tmp_addr: BV
    aligned_addr: BV
    pcpu_reserved_offset: BV
    begin_fill_bits: BV
    map_size_bytes: BV
    first: ChunkLayout
    dyn: ChunkLayout  # only made when ai->reserved_size != 0
    pcpu_unit_pages: BV  # int
    pcpu_unit_size: BV  # int: pcpu_unit_pages << PAGE_SHIFT
    unit_bits: BV  # int pcpu_pages_to_bits(pcpu_unit_pages)

    @property
    def has_reserved_chunk(self) -> Bool:
        return self.x.reserved_size != 0

    def values(self) -> dict[str, BV]:
        """Every named term, for counterexamples and conformance."""
        out: dict[str, BV] = dict(self.x.terms())
        for n in (
            "build_reserved_size",
            "build_size_sum",
            "build_dyn_size",
            "size_sum",
            "tmp_addr",
            "aligned_addr",
            "pcpu_reserved_offset",
            "begin_fill_bits",
            "map_size_bytes",
            "pcpu_unit_pages",
            "pcpu_unit_size",
            "unit_bits",
        ):
            out[n] = getattr(self, n)
        for role in ("first", "dyn"):
            chunk = getattr(self, role)
            for n in ChunkLayout.__dataclass_fields__:
                out[f"{role}.{n}"] = getattr(chunk, n)
        return out


def pcpu_build_alloc_info_sizes(x: LayoutInputs, p: LayoutParams) -> tuple[BV, BV, BV]:
    """PATCH 05 ``pcpu_build_alloc_info``: reserved_size, size_sum, dyn_size as it stores them in ``ai``.

    reserved_size = pcpu_align_reserved_region(static_size, reserved_size);
    size_sum = PFN_ALIGN(static_size + reserved_size +
                         max_t(size_t, dyn_size, PERCPU_DYNAMIC_EARLY_SIZE));
    dyn_size = size_sum - static_size - reserved_size;
    """
    reserved = pcpu_align_reserved_region(x.static_size, x.req_reserved_size, p)
    size_sum = PFN_ALIGN(x.static_size + reserved + max_t_size_t(x.req_dyn_size, ulong(p.early_size)), p)
    return reserved, size_sum, size_sum - x.static_size - reserved


def _chunk(base_addr: BV, exact_pages: BV, begin_fill_bits: BV, p: LayoutParams) -> ChunkLayout:
    """``pcpu_alloc_first_chunk(chunk_pages)`` plus the metadata the setup code writes.

    Bits ``[0, begin_fill_bits)`` are the hidden static overlap; bits
    ``[begin_fill_bits, map_size_bits)`` can be handed out, byte offset
    ``bit * PCPU_MIN_ALLOC_SIZE`` from ``chunk->base_addr``.
    """
    chunk_pages = int_of_ulong(exact_pages)  # int chunk_pages = ... >> PAGE_SHIFT
    nr_bits = pcpu_pages_to_bits(chunk_pages, p)
    # chunk->free_bits = pcpu_nr_pages_to_bits(chunk) - begin_fill_bits: int - unsigned long, stored in an int
    free_bits = int_of_ulong(ulong_of_int(nr_bits) - begin_fill_bits)
    end_bit = ulong_of_int(nr_bits)
    nonempty = end_bit > begin_fill_bits  # signed: a negative map size has no bits
    return ChunkLayout(
        base_addr=base_addr,
        exact_pages=exact_pages,
        chunk_pages=chunk_pages,
        nr_bits=nr_bits,
        nr_blocks=pcpu_nr_pages_to_blocks(chunk_pages, p),
        free_bits=free_bits,
        first_bit=begin_fill_bits,
        alloc_start=base_addr + (begin_fill_bits << PCPU_MIN_ALLOC_SHIFT),
        alloc_len=z3.If(nonempty, (end_bit - begin_fill_bits) << PCPU_MIN_ALLOC_SHIFT, ulong(0)),
    )


def layout_of(x: LayoutInputs, p: LayoutParams) -> SymLayout:
    """The metadata part of ``pcpu_setup_first_chunk`` after PATCH 09, line for line (seed 3227-3346).

    size_t size_sum = ai->static_size + ai->reserved_size + dyn_size;
    pcpu_unit_pages = ai->unit_size >> PAGE_SHIFT;
    pcpu_unit_size = pcpu_unit_pages << PAGE_SHIFT;
    tmp_addr = (unsigned long)base_addr + ai->static_size;
    aligned_addr = tmp_addr & PAGE_MASK;
    pcpu_reserved_offset = tmp_addr - aligned_addr;
    begin_fill_bits = pcpu_reserved_offset / PCPU_MIN_ALLOC_SIZE;
    map_size_bytes = (ai->reserved_size ?: ai->dyn_size) + pcpu_reserved_offset;
    chunk_pages = map_size_bytes >> PAGE_SHIFT;            first chunk at aligned_addr
    if (ai->reserved_size) chunk_pages = dyn_size >> PAGE_SHIFT;
                      ... base_addr + ai->static_size + ai->reserved_size
    """
    b_reserved, b_size_sum, b_dyn = pcpu_build_alloc_info_sizes(x, p)
    size_sum = x.static_size + x.reserved_size + x.dyn_size
    unit_pages = int_of_ulong(z3.LShR(x.unit_size, p.page_shift))
    tmp_addr = x.base_addr + x.static_size
    aligned_addr = tmp_addr & ulong(~(p.page_size - 1))
    offset = tmp_addr - aligned_addr
    begin_fill_bits = pcpu_begin_fill_bits(offset, p)
    map_size_bytes = z3.If(x.reserved_size != 0, x.reserved_size, x.dyn_size) + offset
    first = _chunk(aligned_addr, z3.LShR(map_size_bytes, p.page_shift), begin_fill_bits, p)
    dyn = _chunk(
        x.base_addr + x.static_size + x.reserved_size, z3.LShR(x.dyn_size, p.page_shift), ulong(0), p
    )
    return SymLayout(
        p=p,
        x=x,
        build_reserved_size=b_reserved,
        build_size_sum=b_size_sum,
        build_dyn_size=b_dyn,
        size_sum=size_sum,
        tmp_addr=tmp_addr,
        aligned_addr=aligned_addr,
        pcpu_reserved_offset=offset,
        begin_fill_bits=begin_fill_bits,
        map_size_bytes=map_size_bytes,
        first=first,
        dyn=dyn,
        pcpu_unit_pages=unit_pages,
        pcpu_unit_size=unit_pages << p.page_shift,
        unit_bits=pcpu_pages_to_bits(unit_pages, p),
    )


# -- regions of the address space (modular, as unsigned long arithmetic is) ------------


def in_range(addr: BV, start: BV, length: BV) -> Bool:
    """Byte ``addr`` lies in ``[start, start + length)`` (addresses wrap as unsigned long does)."""
    return z3.ULT(addr - start, length)


def overlaps(a: BV, n: BV, b: BV, m: BV) -> Bool:
    """``[a, a + n)`` and ``[b, b + m)`` share a byte."""
    return z3.And(n != 0, m != 0, z3.Or(in_range(b, a, n), in_range(a, b, m)))


def contains(outer: BV, m: BV, inner: BV, n: BV) -> Bool:
    """``[inner, inner + n)`` lies within ``[outer, outer + m)``."""
    rel = inner - outer
    return z3.Or(n == 0, z3.And(z3.ULE(rel, m), z3.ULE(n, m - rel)))
