"""The first-chunk layout arithmetic of PATCH 05..09 over full 64-bit values: encoding, obligations, conformance.

``pcpu_align_reserved_region`` (PATCH 05), the size part of
``pcpu_build_alloc_info`` and the metadata part of
``pcpu_setup_first_chunk`` (PATCH 06..09) are encoded in QF_BV with the C
types they have: ``unsigned long``/``size_t``/``ssize_t`` are 64-bit
vectors (two's complement, so one encoding serves all three; where the
signedness matters -- a comparison, a signed overflow -- it is spelled
out), ``int`` is a 32-bit vector and every conversion between them is the
truncation or sign extension GCC performs.  ``PAGE_SIZE`` is an
``unsigned long`` (``_AC(1, UL) << PAGE_SHIFT``), so ``pages * PAGE_SIZE``
is computed in 64 bits and only its conversion back to ``int`` can lose
bits.

Each property is an obligation "preconditions and not property": unsat is
PROVED (after a vacuity check that the preconditions, and the case the
property speaks about, are satisfiable -- else VACUOUS), sat is VIOLATED
with a counterexample made small in the order of ``_MINIMIZE_ORDER``, and
anything else is UNKNOWN.  Where a property breaks, a characterisation of
the breaking inputs is stated next to it and proved too -- "iff":
``preconditions => (not property <=> condition)``, "only-if":
``preconditions => (not property => condition)`` -- so a report says
*which* inputs break it, not just one (``Result.extra``: ``breaks_when``,
``breaks_when_kind``, ``breaks_when_verdict``; ``counterexample`` holds
every input and derived value, C ints signed).

The precondition sets (``PRECONDITION_SETS``) are the code's own words:

* ``setup``   -- what ``pcpu_setup_first_chunk`` itself checks
  (its ``PCPU_SETUP_BUG_ON`` list);
* ``callers`` -- additionally what ``pcpu_embed_first_chunk`` /
  ``pcpu_page_first_chunk`` guarantee through ``pcpu_build_alloc_info``;
* ``arch``    -- additionally the arguments the callers pass
  (``PERCPU_MODULE_RESERVE``, ``PERCPU_DYNAMIC_RESERVE`` or 0).

``pcpu_align_reserved_region``'s properties read the caller's request
(``req.*``); the ``setup`` set says nothing about it, so there they are
judged over every argument the function can be given.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import z3

from pcpuverify.model.first_chunk import LayoutError, check_layout, pcpu_setup_first_chunk
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SHIFT, PCPU_MIN_ALLOC_SIZE
from pcpuverify.model.ops import FirstChunkInit
from pcpuverify.model.variants import VARIANTS, variant_class
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import SolverOptions, check

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
    variant: str = "v1"  # whose pcpu_setup_first_chunk: "v1"/"v1-patch09" as posted, or "fixed"

    def __post_init__(self) -> None:
        p = self.page_size
        if not (isinstance(p, int) and p >= 16 and p & (p - 1) == 0 and p <= 1 << 21):
            raise ValueError(
                f"page_size must be a power of two between 16 and {1 << 21} bytes (got {p!r});"
                " PCPU_BITMAP_BLOCK_SIZE = PAGE_SIZE / 4 must be at least 4 bits"
            )
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of: {', '.join(sorted(VARIANTS))}")

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
    """PATCH 09: ``begin_fill_bits = pcpu_reserved_offset / PCPU_MIN_ALLOC_SIZE`` (unsigned long).

    The ``fixed`` variant rounds up (model/variants.py ``Fixed.pcpu_begin_fill_bits``).
    """
    if p.variant == "fixed":
        return z3.LShR(pcpu_reserved_offset + ulong(PCPU_MIN_ALLOC_SIZE - 1), PCPU_MIN_ALLOC_SHIFT)
    return z3.LShR(pcpu_reserved_offset, PCPU_MIN_ALLOC_SHIFT)


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


# -- preconditions -------------------------------------------------------------------


@dataclass(frozen=True)
class Precondition:
    """One condition the code states, with the C it comes from."""

    source: str
    formula: Callable[[SymLayout], Bool]


def _setup_checks(p: LayoutParams) -> list[Precondition]:
    """``pcpu_setup_first_chunk``'s ``PCPU_SETUP_BUG_ON`` list (PATCH 05 adds the PAGE_ALIGNED one), negated.

    Not about sizes, so not here: ``ai->nr_groups <= 0``,
    ``offset_in_page(__per_cpu_start)``, the cpu/unit map checks and
    ``pcpu_verify_alloc_info(ai) < 0`` (percpu-vm: always 0; percpu-km:
    ``nr_groups != 1``).
    """
    out = [
        Precondition("PCPU_SETUP_BUG_ON(!base_addr)", lambda L: L.x.base_addr != 0),
        Precondition("PCPU_SETUP_BUG_ON(offset_in_page(base_addr))", lambda L: PAGE_ALIGNED(L.x.base_addr, L.p)),
        Precondition("PCPU_SETUP_BUG_ON(ai->unit_size < size_sum)", lambda L: z3.UGE(L.x.unit_size, L.size_sum)),
        Precondition("PCPU_SETUP_BUG_ON(offset_in_page(ai->unit_size))", lambda L: PAGE_ALIGNED(L.x.unit_size, L.p)),
        Precondition(
            "PCPU_SETUP_BUG_ON(ai->unit_size < PCPU_MIN_UNIT_SIZE)",
            lambda L: z3.UGE(L.x.unit_size, ulong(L.p.min_unit_size)),
        ),
        Precondition(
            "PCPU_SETUP_BUG_ON(ai->reserved_size && !PAGE_ALIGNED(ai->static_size + ai->reserved_size))",
            lambda L: z3.Or(L.x.reserved_size == 0, PAGE_ALIGNED(L.x.static_size + L.x.reserved_size, L.p)),
        ),
        Precondition(
            "PCPU_SETUP_BUG_ON(ai->dyn_size < PERCPU_DYNAMIC_EARLY_SIZE)",
            lambda L: z3.UGE(L.x.dyn_size, ulong(L.p.early_size)),
        ),
    ]
    if p.smp:
        out.insert(0, Precondition("PCPU_SETUP_BUG_ON(!ai->static_size)  [CONFIG_SMP]", lambda L: L.x.static_size != 0))
    return out


def _min_unit_size(L: SymLayout) -> BV:
    """``pcpu_build_alloc_info``: ``min_unit_size = max_t(size_t, size_sum, PCPU_MIN_UNIT_SIZE)``."""
    return max_t_size_t(L.build_size_sum, ulong(L.p.min_unit_size))


def _caller_guarantees(p: LayoutParams) -> list[Precondition]:
    """What ``pcpu_embed_first_chunk``/``pcpu_page_first_chunk`` hand over, via ``pcpu_build_alloc_info``.

    ``ai->unit_size = alloc_size / upa`` is a page multiple of at least
    ``min_unit_size = max(size_sum, PCPU_MIN_UNIT_SIZE)`` (with ``ai``'s
    sizes as stored, what the setup checks ask) and, since every 4.12
    caller's ``atom_size`` is a power of two of at least a page (PAGE_SIZE,
    PMD_SIZE, 1 MiB on powerpc) and ``upa`` is the largest count that splits
    ``alloc_size = roundup(min_unit_size, atom_size)`` into page multiples,
    less than twice ``min_unit_size``.
    ``base_addr`` is the lowest unit of memory the caller allocated
    (``alloc_fn(cpu, gi->nr_units * ai->unit_size, atom_size)``), so
    ``[base_addr, base_addr + unit_size)`` does not wrap the address space,
    and the static area is copied into each unit (``memcpy(ptr,
    __per_cpu_load, ai->static_size)`` in both callers), so it fits one.
    """
    return [
        Precondition(
            "ai->static_size = __per_cpu_end - __per_cpu_start (unchanged)",
            lambda L: z3.BoolVal(True),
        ),
        Precondition(
            "ai->reserved_size = pcpu_align_reserved_region(static_size, reserved_size)",
            lambda L: L.x.reserved_size == L.build_reserved_size,
        ),
        Precondition(
            "ai->dyn_size = size_sum - static_size - reserved_size, size_sum = PFN_ALIGN(static_size +"
            " reserved_size + max_t(size_t, dyn_size, PERCPU_DYNAMIC_EARLY_SIZE))",
            lambda L: L.x.dyn_size == L.build_dyn_size,
        ),
        Precondition(
            "ai->unit_size = alloc_size / upa >= min_unit_size = max_t(size_t, size_sum, PCPU_MIN_UNIT_SIZE)",
            lambda L: z3.UGE(L.x.unit_size, _min_unit_size(L)),
        ),
        Precondition(
            "alloc_size = roundup(min_unit_size, atom_size), atom_size a power of two >= PAGE_SIZE, upa the"
            " largest count that splits it into page multiples: ai->unit_size < 2 * min_unit_size",
            lambda L: z3.ULT(z3.ZeroExt(1, L.x.unit_size), z3.ZeroExt(1, _min_unit_size(L)) << 1),
        ),
        Precondition(
            "base_addr = lowest unit of alloc_fn(cpu, gi->nr_units * ai->unit_size, atom_size): no wrap",
            lambda L: no_carry(L.x.base_addr, L.x.unit_size),
        ),
        Precondition(
            "memcpy(ptr, __per_cpu_load, ai->static_size) into each unit of ai->unit_size bytes",
            lambda L: z3.ULE(L.x.static_size, L.x.unit_size),
        ),
    ]


def _arch_arguments(p: LayoutParams) -> list[Precondition]:
    """The arguments the 4.12 callers pass to ``pcpu_build_alloc_info``.

    generic: ``pcpu_embed_first_chunk(PERCPU_MODULE_RESERVE, PERCPU_DYNAMIC_RESERVE, ...)``;
    x86-64: ``pcpu_embed_first_chunk(PERCPU_FIRST_CHUNK_RESERVE, PERCPU_MODULE_RESERVE +
    PERCPU_DYNAMIC_RESERVE - PERCPU_FIRST_CHUNK_RESERVE, ...)`` (= 8K, 28K);
    ``pcpu_page_first_chunk(reserved)`` passes dyn_size 0; without
    CONFIG_MODULES the reserve is 0.  ``static_size`` is the linker's.
    """
    return [
        Precondition(
            "reserved_size in {0, PERCPU_MODULE_RESERVE}",
            lambda L: z3.Or(L.x.req_reserved_size == 0, L.x.req_reserved_size == ulong(L.p.module_reserve)),
        ),
        Precondition(
            "dyn_size in {0 (pcpu_page_first_chunk), PERCPU_DYNAMIC_RESERVE}",
            lambda L: z3.Or(L.x.req_dyn_size == 0, L.x.req_dyn_size == ulong(L.p.dynamic_reserve)),
        ),
    ]


PRECONDITION_SETS: dict[str, Callable[[LayoutParams], list[Precondition]]] = {
    "setup": _setup_checks,
    "callers": lambda p: _setup_checks(p) + _caller_guarantees(p),
    "arch": lambda p: _setup_checks(p) + _caller_guarantees(p) + _arch_arguments(p),
}


def preconditions(L: SymLayout, set_name: str) -> list[Bool]:
    return [c.formula(L) for c in PRECONDITION_SETS[set_name](L.p)]


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


# -- running the obligations -----------------------------------------------------------

# Counterexamples are minimised variable by variable in this order (lexicographically).
_MINIMIZE_ORDER = (
    "static_size",
    "req_reserved_size",
    "reserved_size",
    "req_dyn_size",
    "dyn_size",
    "unit_size",
    "base_addr",
)


def _fmt(v: int) -> str:
    if v < 1 << 32:
        return str(v)
    if v >= (1 << 64) - (1 << 32):
        return f"2^64-{(1 << 64) - v}"
    return hex(v)


def _model_values(model: z3.ModelRef, L: SymLayout) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, term in L.values().items():
        v = model.eval(term, model_completion=True)
        n = v.as_long()
        if v.size() == INT_BITS and n >= 1 << (INT_BITS - 1):
            n -= 1 << INT_BITS  # C ints print signed
        out[name] = n
    return out


def _describe(values: dict[str, int], prop: LayoutProperty, set_name: str) -> str:
    if prop.reads_request and set_name == "setup":
        inputs = ["static_size", "req_reserved_size"]
    elif set_name == "setup":
        inputs = ["static_size", "reserved_size", "dyn_size", "unit_size", "base_addr"]
    else:
        inputs = ["static_size", "req_reserved_size", "req_dyn_size", "reserved_size", "dyn_size", "unit_size",
                  "base_addr"]
    label = {"req_reserved_size": "reserved_size(asked)", "req_dyn_size": "dyn_size(asked)"}
    if set_name != "setup":
        label.update({"reserved_size": "ai.reserved_size", "dyn_size": "ai.dyn_size"})
    head = ", ".join(f"{label.get(n, n)}={_fmt(values[n])}" for n in inputs)
    derived = [n for n in prop.shows if n in values]
    if prop.reads_request:
        derived = ["align_result", *derived]
    tail = ", ".join(f"{n}={_fmt(values[n]) if values[n] >= 0 else values[n]}" for n in derived)
    return head + (f" -> {tail}" if tail else "")


# A minimisation probe's resource limit (about half a second here): probes only make a
# counterexample smaller, so a probe that runs out just ends the search, deterministically.
_PROBE_RLIMIT = 1_000_000
_PROBE_BUDGET = 20  # probes per variable; values near 2^64 may stay a little above their minimum


def _minimize(assertions: list[Bool], L: SymLayout, options: SolverOptions) -> tuple[z3.ModelRef | None, float]:
    """The lexicographically smallest model in ``_MINIMIZE_ORDER``; None if the solver gives up on the first check.

    One incremental solver; per variable: the smallest bit length (binary
    search on the exponent, which also tries 0), then the smallest value of
    that length (binary search, each sat answer jumping to the model's
    value).  Probes have a small rlimit (``_PROBE_RLIMIT``) and there are at
    most ``_PROBE_BUDGET`` per variable; an ``unknown`` or an exhausted budget
    keeps the model found so far -- a counterexample, maybe not the
    smallest, and the same one on every machine.
    """
    start = time.perf_counter()
    solver = z3.SolverFor("QF_BV")
    solver.set("rlimit", options.rlimit)
    solver.set("random_seed", options.seed)
    solver.set("timeout", int(options.timeout * 1000))
    solver.add(*assertions)
    if solver.check() != z3.sat:
        return None, time.perf_counter() - start
    model = solver.model()
    # Probes are a nicety: each gets a small share of the budget, and an unknown just stops the search.
    solver.set("rlimit", min(options.rlimit, _PROBE_RLIMIT))

    def value(var: BV) -> int:
        return model.eval(var, model_completion=True).as_long()

    probes = 0

    def probe(condition: Bool) -> str:
        nonlocal model, probes
        probes += 1
        if probes > _PROBE_BUDGET:
            return "unknown"
        solver.push()
        solver.add(condition)
        status = solver.check()
        if status == z3.sat:
            model = solver.model()
        solver.pop()
        return "sat" if status == z3.sat else "unsat" if status == z3.unsat else "unknown"

    for name in _MINIMIZE_ORDER:
        var = getattr(L.x, name)
        probes = 0
        hi = value(var)
        lo = 0
        # the bit length first: few checks even for values near 2^64
        klo, khi = 0, hi.bit_length()
        while klo < khi:
            k = (klo + khi) // 2
            status = probe(z3.ULT(var, ulong(1 << k)) if k < BITS_PER_LONG else z3.BoolVal(True))
            if status == "sat":
                hi = value(var)
                khi = hi.bit_length()
            elif status == "unsat":
                klo = k + 1
            else:
                break
        lo = (1 << (klo - 1)) if klo > 0 else 0
        while lo < hi:
            mid = (lo + hi) // 2
            status = probe(z3.ULE(var, ulong(mid)))
            if status == "sat":
                hi = value(var)
            elif status == "unsat":
                lo = mid + 1
            else:
                break
        solver.add(var == ulong(hi))  # ``model`` (the last sat answer) already has var == hi
    return model, time.perf_counter() - start


def prove_layout_property(
    prop: LayoutProperty,
    set_name: str,
    params: LayoutParams,
    options: SolverOptions,
    variant: str = "layout",
    thorough: bool = False,
) -> Result:
    """One obligation: ``preconditions(set_name) and not prop`` over 64-bit values.

    Then the characterisation of the breaking inputs, if the property has
    one for this set (``thorough`` includes the slow ones).  A PROVED
    property breaks "never" -- that is the PROVED itself.
    """
    L = layout_of(LayoutInputs.fresh(), params)
    pre = preconditions(L, set_name)
    extra: dict[str, object] = {"preconditions": set_name}

    def result(verdict: Verdict, seconds: float, detail: str = "") -> Result:
        return Result(variant, f"{params.geometry}/{set_name}", prop.name, "layout", verdict, seconds, detail,
                      extra=extra)

    vac = check([*pre, prop.guard(L)], options)
    if vac.status == "unknown":
        return result(Verdict.UNKNOWN, vac.seconds, f"vacuity check: {vac.reason}")
    if vac.status == "unsat":
        return result(
            Verdict.VACUOUS, vac.seconds, f"the {set_name} preconditions admit no case this property is about"
        )
    seconds = vac.seconds

    answer = check([*pre, z3.Not(prop.holds(L))], options)
    seconds += answer.seconds
    if answer.status == "unknown":
        return result(Verdict.UNKNOWN, seconds, answer.reason)

    char = prop.breaks.get(set_name) if params.variant in ("v1", "v1-patch09") else None
    if answer.status == "unsat":
        extra.update(breaks_when="never", breaks_when_kind="iff", breaks_when_verdict="PROVED")
    elif char is not None:
        extra.update(breaks_when=char.text, breaks_when_kind=char.kind, breaks_when_verdict="NOT-CHECKED")
        if thorough or not char.slow:  # slow ones take minutes: only when asked
            broken = z3.Not(prop.holds(L))
            claim = broken != char.condition(L) if char.kind == "iff" else z3.And(broken, z3.Not(char.condition(L)))
            exact = check([*pre, claim], options)
            seconds += exact.seconds
            extra["breaks_when_verdict"] = {"unsat": "PROVED", "sat": "VIOLATED", "unknown": "UNKNOWN"}[exact.status]

    if answer.status == "unsat":
        return result(Verdict.PROVED, seconds)

    model, min_seconds = _minimize([*pre, z3.Not(prop.holds(L))], L, options)
    seconds += min_seconds
    if model is None:  # the minimiser's solver gave up where check() did not: use check()'s model
        model = answer.model
    assert model is not None
    values = _model_values(model, L)
    values["align_result"] = values["build_reserved_size"]
    extra["counterexample"] = values
    return result(Verdict.VIOLATED, seconds, _describe(values, prop, set_name))


def run_layout_suite(
    page_size: int,
    options: SolverOptions,
    *,
    variant: str = "layout",
    sets: Iterable[str] = ("setup", "callers", "arch"),
    params: LayoutParams | None = None,
    conformance_layouts: int = 120,
    thorough: bool = False,
) -> list[Result]:
    """Every layout property under every precondition set, at one page size (kernel constants by default).

    Conformance first: the encoding, evaluated on concrete layouts, must
    agree with ``model/first_chunk`` (checked with the model's scaled
    constants at this page size and at 32 bytes).  If it does not, every
    result is NONCONFORMANT.
    """
    code = variant if variant in VARIANTS else "v1"  # "layout" names v1's setup code
    params = params or LayoutParams.kernel(page_size, variant=code)
    sets = tuple(sets)
    start = time.perf_counter()
    mismatches = cross_check(32, conformance_layouts, options.seed, variant=params.variant)
    if not mismatches and page_size != 32:
        mismatches = cross_check(
            page_size, max(conformance_layouts // 6, 1), options.seed, max_pages=4, variant=params.variant
        )
    conformance_seconds = time.perf_counter() - start
    results: list[Result] = []
    for set_name in sets:
        for prop in LAYOUT_PROPERTIES.values():
            if set_name not in prop.sets:
                continue
            if mismatches:
                results.append(
                    Result(variant, params.geometry, prop.name, "layout", Verdict.NONCONFORMANT,
                           conformance_seconds, mismatches[0], extra={"preconditions": set_name})
                )
                continue
            results.append(prove_layout_property(prop, set_name, params, options, variant, thorough))
    return results


# -- conformance: the same formulas on concrete values, against model/first_chunk ----------


def evaluate_layout(params: LayoutParams, **inputs: int) -> dict[str, int]:
    """Every named term of the layout for concrete inputs (C ints signed, the rest unsigned 64-bit)."""
    L = layout_of(LayoutInputs.const(**inputs), params)
    out: dict[str, int] = {}
    for name, term in L.values().items():
        v = z3.simplify(term)
        if not z3.is_bv_value(v):
            raise ValueError(f"layout term {name} did not reduce to a constant: {v}")
        n = v.as_long()
        if v.size() == INT_BITS and n >= 1 << (INT_BITS - 1):
            n -= 1 << INT_BITS
        out[name] = n
    return out


def evaluate_predicates(params: LayoutParams, set_name: str, **inputs: int) -> tuple[bool, dict[str, bool]]:
    """Whether the inputs meet ``set_name``'s preconditions, and each property's truth on them."""
    L = layout_of(LayoutInputs.const(**inputs), params)
    accepted = z3.is_true(z3.simplify(z3.And(*preconditions(L, set_name))))
    props = {name: z3.is_true(z3.simplify(prop.holds(L))) for name, prop in LAYOUT_PROPERTIES.items()}
    return accepted, props


def _model_free_range(chunk_map: int, nbits: int) -> tuple[int, int]:
    """First free bit and number of free bits of a fresh first chunk (free bits form one run to the end)."""
    free = [i for i in range(nbits) if not (chunk_map >> i) & 1]
    return (free[0] if free else nbits), len(free)


def cross_check(
    page_size: int = 32, count: int = 300, seed: int = 0, max_pages: int = 8, variant: str = "v1"
) -> list[str]:
    """Concrete layouts through ``layout_of`` and ``model/first_chunk``: every disagreement, one line each.

    Uses ``LayoutParams.scaled(page_size)`` (the model's constants),
    ``base_addr`` = some page-aligned address and ``unit_size`` =
    ``PFN_ALIGN(size_sum)`` (what the model derives).  Compared: acceptance
    by the setup checks, pcpu_reserved_offset, begin_fill_bits,
    map_size_bytes, each chunk's nr_pages / bits / blocks / free_bits,
    the bits it can hand out, and the static-overlap property against the
    model chunk's ``alloc_map`` (every bit holding a static byte allocated).
    """
    params = LayoutParams.scaled(page_size, variant)
    rng = random.Random(f"layout:{seed}:{page_size}")
    alloc_cls = variant_class(variant)
    out: list[str] = []
    for i in range(count):
        static = rng.choice([rng.randrange(1, page_size * 2), rng.randrange(1, 5) * page_size + rng.randrange(4)])
        if rng.random() < 0.15:
            static = 0
        kind = rng.random()
        if kind < 0.4:
            reserved = 0
        elif kind < 0.8:
            reserved = _pfn_align_int(static + rng.randrange(1, page_size * 2), page_size) - static
        else:
            reserved = rng.randrange(1, page_size * 2)  # often refused: not page aligned
        dyn = rng.choice([rng.randrange(page_size, page_size * max_pages // 2),
                          rng.randrange(1, max_pages // 2 + 1) * page_size, rng.randrange(0, page_size)])
        size_sum = static + reserved + dyn
        unit = _pfn_align_int(size_sum, page_size)
        base = page_size * rng.randrange(1, 1 << 20)
        values = dict(static_size=static, reserved_size=reserved, dyn_size=dyn, unit_size=unit, base_addr=base)
        where = f"layout {i} (page {page_size}: static {static}, reserved {reserved}, dyn {dyn})"
        accepted, props = evaluate_predicates(params, "setup", **values)
        try:
            layout = check_layout(FirstChunkInit(static, reserved, dyn), page_size)
        except LayoutError:
            if accepted:
                out.append(f"{where}: model refuses it, the encoding's setup checks accept it")
            continue
        if not accepted:
            out.append(f"{where}: model accepts it, the encoding's setup checks refuse it")
            continue
        enc = evaluate_layout(params, **values)
        pairs = [
            ("pcpu_reserved_offset", layout.pcpu_reserved_offset),
            ("map_size_bytes", layout.map_size_bytes),
            ("first.chunk_pages", layout.first_chunk_pages),
            ("pcpu_unit_pages", layout.unit_pages),
        ]
        if reserved:
            pairs.append(("dyn.chunk_pages", layout.dyn_chunk_pages))
        alloc = alloc_cls(params.block_bits, layout.unit_pages)
        # the variant's own line, not FirstChunkLayout.begin_fill_bits (always v1's truncating division)
        pairs.append(("begin_fill_bits", alloc.pcpu_begin_fill_bits(layout.pcpu_reserved_offset)))
        chunks = pcpu_setup_first_chunk(alloc, layout)
        roles = [("first", chunks["reserved" if reserved else "dynamic"])]
        if reserved:
            roles.append(("dyn", chunks["dynamic"]))
        for role, chunk in roles:
            first_free, nr_free = _model_free_range(chunk.alloc_map.value, chunk.alloc_map.nbits)
            pairs += [
                (f"{role}.chunk_pages", chunk.nr_pages),
                (f"{role}.nr_bits", alloc.pcpu_nr_pages_to_bits(chunk)),
                (f"{role}.nr_blocks", alloc.pcpu_nr_pages_to_blocks(chunk)),
                (f"{role}.free_bits", chunk.free_bits),
                (f"{role}.alloc_len", nr_free * PCPU_MIN_ALLOC_SIZE),
            ]
            if nr_free:
                base_of = enc["aligned_addr"] if role == "first" else base + static + reserved
                pairs.append((f"{role}.alloc_start", (base_of + first_free * PCPU_MIN_ALLOC_SIZE) & MASK64))
        for name, model_value in pairs:
            if enc[name] != model_value:
                out.append(f"{where}: {name} is {enc[name]} in the encoding, {model_value} in model/")
        # model/'s own account of the static overlap: every bit holding a static byte is allocated
        first_chunk = roles[0][1]
        static_bits = -(-alloc.pcpu_reserved_offset // PCPU_MIN_ALLOC_SIZE)
        amap = first_chunk.alloc_map
        hidden = all((amap.value >> b) & 1 for b in range(min(static_bits, amap.nbits)))
        if hidden != props["first-chunk-static-region-not-allocatable"]:
            out.append(
                f"{where}: first-chunk-static-region-not-allocatable is"
                f" {props['first-chunk-static-region-not-allocatable']} in the encoding, but model/'s"
                f" alloc_map {'hides' if hidden else 'leaves free'} the static bytes"
            )
    return out
