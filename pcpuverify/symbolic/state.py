"""The symbolic chunk: the fields of ``struct pcpu_chunk`` and its ``md_blocks`` as Z3 bit-vectors.

Besides the kernel fields it carries the ghost record of live allocations
(``g_start``: the bits where one starts, ``g_used``: the bits they cover)
and ``oob``/``oob_write``: whether the last operation touched (wrote) an
array out of bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import z3

from pcpuverify.model.geometry import Geometry
from pcpuverify.model.state import BITMAP_FIELDS, BLOCK_FIELDS, INT_FIELDS
from pcpuverify.symbolic.bv import INT_W, I, Int, ite

# The fields come from the model's dataclass (model/state.py): one list, so that a field added there reaches
# the encoding, conformance and the CTI drawings (SymBlock and SymChunk must then grow it too; a test holds that).
# The chunk's ints, and the allocator's global count:
CHUNK_FIELDS = (*INT_FIELDS, "pcpu_nr_empty_pop_pages")
GHOST_FIELDS = ("g_start", "g_used")  # the ghost record of live allocations, as bit-vectors


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


def vector_widths(geometry: Geometry) -> dict[str, int]:
    """The width of each bitmap (as ``PcpuChunk.zalloc`` sizes it) and of each ghost."""
    n = geometry.nr_bits
    return {"alloc_map": n, "bound_map": n + 1, "populated": geometry.nr_pages,
            **dict.fromkeys(GHOST_FIELDS, ghost_width(geometry))}


def block_key(index: int, name: str) -> str:
    """The flat name of field ``name`` of ``md_blocks[index]``."""
    return f"md_blocks[{index}].{name}"


def flat_names(geometry: Geometry) -> tuple[str, ...]:
    """Every value of a chunk as ``constant_chunk`` takes it: bitmaps, ints, ghosts, then each block's fields."""
    blocks = (block_key(i, f) for i in range(geometry.nr_pages) for f in BLOCK_FIELDS)
    return (*BITMAP_FIELDS, *CHUNK_FIELDS, *GHOST_FIELDS, *blocks)


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
    width = vector_widths(geometry)

    def var(name: str, bits: int = INT_W) -> z3.BitVecRef:
        return z3.BitVec(f"{prefix}.{name}", bits)

    # made in this order (bitmaps, blocks, ints, ghosts): Z3 numbers its terms as they are made
    return SymChunk(
        geometry=geometry,
        **{f: var(f, width[f]) for f in BITMAP_FIELDS},
        md_blocks=tuple(
            SymBlock(*(var(block_key(i, f)) for f in BLOCK_FIELDS)) for i in range(geometry.nr_pages)
        ),
        **{f: var(f) for f in CHUNK_FIELDS},
        **{f: var(f, width[f]) for f in GHOST_FIELDS},
        oob=z3.Bool(f"{prefix}.oob"),
        oob_write=z3.Bool(f"{prefix}.oob_write"),
    )


def constant_chunk(geometry: Geometry, values: Mapping[str, int]) -> SymChunk:
    """A chunk of constants from its values by ``flat_names``: a concrete state, or the initial chunk.

    Nothing was touched out of bounds (``oob`` false): the state is a sound one.
    """
    width = vector_widths(geometry)
    return SymChunk(
        geometry=geometry,
        **{f: z3.BitVecVal(values[f], width[f]) for f in BITMAP_FIELDS},
        md_blocks=tuple(
            SymBlock(*(I(int(values[block_key(i, f)])) for f in BLOCK_FIELDS)) for i in range(geometry.nr_pages)
        ),
        **{f: I(int(values[f])) for f in CHUNK_FIELDS},
        **{f: z3.BitVecVal(values[f], width[f]) for f in GHOST_FIELDS},
        oob=z3.BoolVal(False),
        oob_write=z3.BoolVal(False),
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
        *population_and_ghost_well_formed(chunk),
    ]
    for b in chunk.md_blocks:
        for f in BLOCK_FIELDS:
            conds += [getattr(b, f) >= 0, getattr(b, f) <= B]
    return z3.And(conds)


def population_and_ghost_well_formed(chunk: Any) -> list[z3.BoolRef]:  # a SymChunk or a SymChunk54
    """The ranges of the fields every chunk layout shares (population, slot, the ghost): ``well_formed``'s
    and the release layout's (``release_state.well_formed``) common part, in the order both assert it."""
    g = chunk.geometry
    return [
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
