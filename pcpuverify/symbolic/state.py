"""The symbolic chunk: the fields of ``struct pcpu_chunk`` and its ``md_blocks`` as Z3 bit-vectors.

Besides the kernel fields it carries the ghost record of live allocations
(``g_start``: the bits where one starts, ``g_used``: the bits they cover)
and ``oob``/``oob_write``: whether the last operation touched (wrote) an
array out of bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import z3

from pcpuverify.model.chunk import PcpuBitmapMd, PcpuChunk
from pcpuverify.model.geometry import Geometry
from pcpuverify.symbolic.bv import INT_W, I, Int, ite

# The fields come from the model's dataclasses: one list, so that a field added there reaches the
# encoding, conformance and the CTI drawings (SymBlock and SymChunk must then grow it too; a test holds that).
BLOCK_FIELDS = tuple(f.name for f in fields(PcpuBitmapMd))
# every int of struct pcpu_chunk but nr_pages (fixed by the geometry), and the allocator's global count
CHUNK_FIELDS = (
    *(f.name for f in fields(PcpuChunk) if f.type == "int" and f.name != "nr_pages"),
    "pcpu_nr_empty_pop_pages",
)


@dataclass(frozen=True)
class SymOp:
    """An operation with symbolic arguments; ``kind`` is concrete (one obligation per kind)."""

    kind: str  # "alloc", "free", "populate", "depopulate"
    bits: Int = I(0)
    align: Int = I(1)
    pop_only: z3.BoolRef = z3.BoolVal(False)
    bit_off: Int = I(0)
    page_start: Int = I(0)
    page_end: Int = I(0)


def ghost_width(geometry: Geometry) -> int:
    """The chunk's bits plus the end bit of an allocation reaching the end.

    An allocation past the chunk (v1 can hand one out) writes past
    ``alloc_map``; nothing after that step is judged, so the ghost need not
    hold it.
    """
    return geometry.nr_bits + 1


@dataclass(frozen=True)
class SymBlock:
    contig_hint: Int
    contig_hint_start: Int
    left_free: Int
    right_free: Int
    first_free: Int

    @staticmethod
    def zero() -> SymBlock:
        return SymBlock(I(0), I(0), I(0), I(0), I(0))

    def merge(self, cond: z3.BoolRef | bool, other: SymBlock) -> SymBlock:
        """``cond ? self : other`` field by field."""
        return SymBlock(*(ite(cond, getattr(self, f), getattr(other, f)) for f in BLOCK_FIELDS))


@dataclass(frozen=True)
class SymChunk:
    """One chunk and the allocator globals that matter to it (the model has one dynamic chunk)."""

    geometry: Geometry
    alloc_map: z3.BitVecRef  # nr_bits
    bound_map: z3.BitVecRef  # nr_bits + 1
    populated: z3.BitVecRef  # nr_pages
    md_blocks: tuple[SymBlock, ...]
    free_bits: Int
    contig_hint: Int
    contig_hint_start: Int
    first_free_block: Int
    nr_populated: Int
    nr_empty_pop_pages: Int
    slot: Int
    pcpu_nr_empty_pop_pages: Int
    g_start: z3.BitVecRef  # ghost_width
    g_used: z3.BitVecRef  # ghost_width
    oob: z3.BoolRef  # the last operation touched an array out of bounds
    oob_write: z3.BoolRef  # ... and wrote there: the state after it is undefined

    @property
    def nr_bits(self) -> int:
        return self.geometry.nr_bits

    def merge(self, cond: z3.BoolRef | bool, other: SymChunk) -> SymChunk:
        """``cond ? self : other`` for every field."""
        values = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "geometry":
                values[f.name] = a
            elif f.name == "md_blocks":
                values[f.name] = tuple(x.merge(cond, y) for x, y in zip(a, b))
            else:
                values[f.name] = ite(cond, a, b)
        return SymChunk(**values)

    def set(self, **changes: object) -> SymChunk:
        return replace(self, **changes)


def fresh_chunk(geometry: Geometry, prefix: str) -> SymChunk:
    """An arbitrary chunk state: every field an unconstrained variable named ``prefix.field``."""
    n, gw = geometry.nr_bits, ghost_width(geometry)

    def var(name: str, width: int = INT_W) -> z3.BitVecRef:
        return z3.BitVec(f"{prefix}.{name}", width)

    return SymChunk(
        geometry=geometry,
        alloc_map=var("alloc_map", n),
        bound_map=var("bound_map", n + 1),
        populated=var("populated", geometry.nr_pages),
        md_blocks=tuple(
            SymBlock(*(var(f"md_blocks[{i}].{f}") for f in BLOCK_FIELDS)) for i in range(geometry.nr_pages)
        ),
        **{f: var(f) for f in CHUNK_FIELDS},
        g_start=var("g_start", gw),
        g_used=var("g_used", gw),
        oob=z3.Bool(f"{prefix}.oob"),
        oob_write=z3.Bool(f"{prefix}.oob_write"),
    )


def well_formed(chunk: SymChunk) -> z3.BoolRef:
    """Ranges every C field has in any state (not invariants: what the types and the code's arithmetic give).

    Scalars are non-negative and below the chunk's size in the unit they
    count, so that a counterexample to induction is a state C could hold.
    """
    g, B = chunk.geometry, chunk.geometry.block_bits
    n = g.nr_bits
    conds = [
        chunk.free_bits >= 0,
        chunk.free_bits <= n,
        chunk.contig_hint >= 0,
        chunk.contig_hint <= n,
        chunk.contig_hint_start >= 0,
        chunk.contig_hint_start <= n,
        chunk.first_free_block >= 0,
        chunk.first_free_block <= g.nr_pages,
        chunk.nr_populated >= 0,
        chunk.nr_populated <= g.nr_pages,
        chunk.nr_empty_pop_pages >= 0,
        chunk.nr_empty_pop_pages <= g.nr_pages,
        chunk.pcpu_nr_empty_pop_pages >= 0,
        chunk.pcpu_nr_empty_pop_pages <= g.nr_pages,
        chunk.slot >= 0,
        chunk.slot < 64,
        z3.Not(chunk.oob),
        z3.Not(chunk.oob_write),
        # the ghost is a set of disjoint allocations: each covers its start, each run of
        # covered bits begins at a start
        chunk.g_start & ~chunk.g_used == 0,
        chunk.g_used & ~(chunk.g_used << 1) & ~chunk.g_start == 0,
    ]
    for b in chunk.md_blocks:
        for f in BLOCK_FIELDS:
            conds += [getattr(b, f) >= 0, getattr(b, f) <= B]
    return z3.And(conds)
