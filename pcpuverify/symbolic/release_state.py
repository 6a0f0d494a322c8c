"""The symbolic chunk of the scan_hint releases (5.2 on): ``struct pcpu_chunk`` with ``chunk_md`` and 5.2's blocks.

The fields come from the model's dataclasses (``linux_5_4.PcpuBlockMd``,
``PcpuChunk54``) as ``symbolic/state.py`` derives the 2017 ones: a field
added there reaches the encoding, conformance and the CTI dumps (and
SymBlockMd must then grow it; a test holds that).  The chunk keeps the
names every layout shares (``alloc_map``, ``bound_map``, ``populated``,
``nr_populated``, ``nr_empty_pop_pages``, ``slot``, the global
``pcpu_nr_empty_pop_pages``, the ghost ``g_start``/``g_used`` and the
``oob`` flags), so the invariants written for every layout read it as they
read the 2017 chunk; ``free_bits`` is ``free_bytes`` in bits, as the model's
``ReleaseChunk.free_bits``.

Not held: ``immutable`` (false for a chunk of ``pcpu_alloc_chunk``) and
mainline's ``isolated`` (never set with one dynamic chunk: model/mainline.py
says why); the 5.4 global ``pcpu_nr_populated``, which no code of the chunk
reads.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import z3

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.linux_5_4 import PcpuBlockMd, PcpuChunk54
from pcpuverify.symbolic.bv import INT_W, I, Int, ite
from pcpuverify.symbolic.state import ghost_width, population_and_ghost_well_formed

RELEASE_BLOCK_FIELDS = tuple(f.name for f in fields(PcpuBlockMd))
# every int of 5.4's struct pcpu_chunk but nr_pages (fixed by the geometry), and the allocator's global count
RELEASE_CHUNK_FIELDS = (
    *(f.name for f in fields(PcpuChunk54) if f.type == "int" and f.name != "nr_pages"),
    "pcpu_nr_empty_pop_pages",
)


@dataclass(frozen=True)
class SymBlockMd:
    """5.2's ``struct pcpu_block_md``: a block's hints, or the whole chunk's (``chunk_md``)."""

    scan_hint: Int
    scan_hint_start: Int
    contig_hint: Int
    contig_hint_start: Int
    left_free: Int
    right_free: Int
    first_free: Int
    nr_bits: Int

    @staticmethod
    def zero() -> SymBlockMd:
        return SymBlockMd(*(I(0) for _ in RELEASE_BLOCK_FIELDS))

    def merge(self, cond: z3.BoolRef | bool, other: SymBlockMd) -> SymBlockMd:
        """``cond ? self : other`` field by field."""
        return SymBlockMd(*(ite(cond, getattr(self, f), getattr(other, f)) for f in RELEASE_BLOCK_FIELDS))

    def set(self, **changes: Int) -> SymBlockMd:
        return replace(self, **changes)


@dataclass(frozen=True)
class SymChunk54:
    """One 5.2-layout chunk and the allocator global that matters to it (the model has one dynamic chunk)."""

    geometry: Geometry
    alloc_map: z3.BitVecRef  # nr_bits
    bound_map: z3.BitVecRef  # nr_bits + 1
    populated: z3.BitVecRef  # nr_pages
    md_blocks: tuple[SymBlockMd, ...]
    chunk_md: SymBlockMd
    free_bytes: Int
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

    @property
    def free_bits(self) -> Int:
        """``free_bytes / PCPU_MIN_ALLOC_SIZE`` (floored, as ``ReleaseChunk.free_bits``)."""
        assert PCPU_MIN_ALLOC_SIZE == 4
        return self.free_bytes >> 2

    def merge(self, cond: z3.BoolRef | bool, other: SymChunk54) -> SymChunk54:
        """``cond ? self : other`` for every field."""
        values: dict[str, object] = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "geometry":
                values[f.name] = a
            elif f.name == "md_blocks":
                values[f.name] = tuple(x.merge(cond, y) for x, y in zip(a, b))
            elif f.name == "chunk_md":
                values[f.name] = a.merge(cond, b)
            else:
                values[f.name] = ite(cond, a, b)
        return SymChunk54(**values)  # type: ignore[arg-type]

    def set(self, **changes: object) -> SymChunk54:
        return replace(self, **changes)


def fresh_chunk54(geometry: Geometry, prefix: str) -> SymChunk54:
    """An arbitrary chunk state: every field an unconstrained variable named ``prefix.field``."""
    n, gw = geometry.nr_bits, ghost_width(geometry)

    def var(name: str, width: int = INT_W) -> z3.BitVecRef:
        return z3.BitVec(f"{prefix}.{name}", width)

    return SymChunk54(
        geometry=geometry,
        alloc_map=var("alloc_map", n),
        bound_map=var("bound_map", n + 1),
        populated=var("populated", geometry.nr_pages),
        md_blocks=tuple(
            SymBlockMd(*(var(f"md_blocks[{i}].{f}") for f in RELEASE_BLOCK_FIELDS)) for i in range(geometry.nr_pages)
        ),
        chunk_md=SymBlockMd(*(var(f"chunk_md.{f}") for f in RELEASE_BLOCK_FIELDS)),
        **{f: var(f) for f in RELEASE_CHUNK_FIELDS},
        g_start=var("g_start", gw),
        g_used=var("g_used", gw),
        oob=z3.Bool(f"{prefix}.oob"),
        oob_write=z3.Bool(f"{prefix}.oob_write"),
    )


def well_formed54(chunk: SymChunk54) -> z3.BoolRef:
    """Ranges every C field has in any state (not invariants: what the types and the code's arithmetic give).

    Each ``pcpu_block_md`` field lies in ``[0, nr_bits]`` of what it covers
    (a block's page, or the chunk's bits for ``chunk_md``); ``free_bytes``
    is a multiple of ``PCPU_MIN_ALLOC_SIZE`` in ``[0, chunk bytes]``.
    """
    g, B = chunk.geometry, chunk.geometry.block_bits
    n = g.nr_bits
    conds = [
        chunk.free_bytes >= 0,
        chunk.free_bytes <= n * PCPU_MIN_ALLOC_SIZE,
        chunk.free_bytes & (PCPU_MIN_ALLOC_SIZE - 1) == 0,
        *population_and_ghost_well_formed(chunk),
    ]
    for md, size in [*((b, B) for b in chunk.md_blocks), (chunk.chunk_md, n)]:
        for f in RELEASE_BLOCK_FIELDS:
            conds += [getattr(md, f) >= 0, getattr(md, f) <= size]
    return z3.And(conds)
