"""The symbolic chunks of the released allocators: 4.14's ``struct pcpu_chunk``, and 5.2's with ``chunk_md``.

``SymChunk414`` is 4.14's (``contig_bits``, ``contig_bits_start``,
``first_bit``; its blocks are the posting's ``pcpu_block_md``, ``SymBlock``);
``SymChunk54`` is the scan_hint releases' (``chunk_md`` and 5.2's blocks,
``SymBlockMd``).  The fields come from the model's dataclasses
(``linux_4_14.PcpuChunk414``, ``linux_5_4.PcpuBlockMd``, ``PcpuChunk54``) as
``symbolic/state.py`` derives the 2017 ones: a field added there reaches
the encoding, conformance and the CTI dumps (and the symbolic classes must
then grow it; a test holds that).  Each ``ReleaseLayout`` names its lists,
so the converters treat both layouts with one code path.  A chunk keeps the
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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import z3

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.linux_4_14 import PcpuChunk414
from pcpuverify.model.linux_5_4 import PcpuBlockMd, PcpuChunk54
from pcpuverify.model.state import BLOCK_FIELDS
from pcpuverify.symbolic.bv import INT_W, I, Int, ite
from pcpuverify.symbolic.state import SymBlock, ghost_width, population_and_ghost_well_formed


def _chunk_ints(chunk_class: type) -> tuple[str, ...]:
    """Every int of a release's struct pcpu_chunk but nr_pages (fixed by the geometry), and the allocator's
    global count."""
    return (*(f.name for f in fields(chunk_class) if f.type == "int" and f.name != "nr_pages"),
            "pcpu_nr_empty_pop_pages")


RELEASE_BLOCK_FIELDS = tuple(f.name for f in fields(PcpuBlockMd))
RELEASE_CHUNK_FIELDS = _chunk_ints(PcpuChunk54)
CHUNK414_FIELDS = _chunk_ints(PcpuChunk414)


@dataclass(frozen=True)
class SymReleaseChunk:
    """The fields both release layouts' chunks keep, and what they do alike: merge and set field by field,
    ``free_bits``.  One chunk and the allocator global that matters to it (the model has one dynamic chunk)."""

    geometry: Geometry
    alloc_map: z3.BitVecRef  # nr_bits
    bound_map: z3.BitVecRef  # nr_bits + 1
    populated: z3.BitVecRef  # nr_pages
    md_blocks: tuple[Any, ...]  # the release's pcpu_block_md, one per page
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

    def merge(self, cond: z3.BoolRef | bool, other: Any) -> Any:
        """``cond ? self : other`` for every field (a block field, or each of ``md_blocks``, by its own merge)."""
        values: dict[str, object] = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "geometry":
                values[f.name] = a
            elif isinstance(a, tuple):
                values[f.name] = tuple(x.merge(cond, y) for x, y in zip(a, b))
            elif hasattr(a, "merge"):
                values[f.name] = a.merge(cond, b)
            else:
                values[f.name] = ite(cond, a, b)
        return type(self)(**values)

    def set(self, **changes: object) -> Any:
        return replace(self, **changes)


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
class SymChunk54(SymReleaseChunk):
    """One 5.2-layout chunk: its blocks are ``SymBlockMd``, and the chunk's hints a block of its own."""

    chunk_md: SymBlockMd


@dataclass(frozen=True)
class SymChunk414(SymReleaseChunk):
    """One 4.14 chunk: the posting's blocks (``SymBlock``), and 4.14's chunk hint ``contig_bits``."""

    contig_bits: Int
    contig_bits_start: Int
    first_bit: Int


@dataclass(frozen=True)
class ReleaseLayout:
    """How one release layout's symbolic chunk is built from flat values: its classes and field lists.

    ``singles`` are the chunk's own ``pcpu_block_md`` fields (5.2's ``chunk_md``), flattened as
    ``chunk_md.<field>``; each of ``md_blocks`` is flattened as ``md_blocks[i].<field>``.
    """

    model_chunk: type
    sym_chunk: type
    sym_block: type
    block_fields: tuple[str, ...]
    chunk_fields: tuple[str, ...]
    singles: tuple[str, ...]

    def flat_names(self, geometry: Geometry) -> tuple[str, ...]:
        """Every value of a chunk by its flat name, in the order ``build`` makes them: maps, blocks, singles,
        ints, ghosts."""
        return ("alloc_map", "bound_map", "populated",
                *(f"md_blocks[{i}].{f}" for i in range(geometry.nr_pages) for f in self.block_fields),
                *(f"{name}.{f}" for name in self.singles for f in self.block_fields),
                *self.chunk_fields, "g_start", "g_used")

    def build(self, geometry: Geometry, value: Callable[[str, int], z3.BitVecRef]) -> Any:
        """A symbolic chunk whose every value is ``value(flat name, width)``, made in ``flat_names`` order
        (Z3 numbers its terms as they are made); nothing touched out of bounds unless ``value`` says so."""
        n, gw = geometry.nr_bits, ghost_width(geometry)
        maps = {"alloc_map": value("alloc_map", n), "bound_map": value("bound_map", n + 1),
                "populated": value("populated", geometry.nr_pages)}
        blocks = tuple(self.sym_block(*(value(f"md_blocks[{i}].{f}", INT_W) for f in self.block_fields))
                       for i in range(geometry.nr_pages))
        singles = {name: self.sym_block(*(value(f"{name}.{f}", INT_W) for f in self.block_fields))
                   for name in self.singles}
        ints = {f: value(f, INT_W) for f in self.chunk_fields}
        return self.sym_chunk(geometry=geometry, **maps, md_blocks=blocks, **singles, **ints,
                              g_start=value("g_start", gw), g_used=value("g_used", gw),
                              oob=z3.BoolVal(False), oob_write=z3.BoolVal(False))

    def fresh(self, geometry: Geometry, prefix: str) -> Any:
        """An arbitrary chunk state: every field an unconstrained variable named ``prefix.field``."""
        chunk = self.build(geometry, lambda name, width: z3.BitVec(f"{prefix}.{name}", width))
        return chunk.set(oob=z3.Bool(f"{prefix}.oob"), oob_write=z3.Bool(f"{prefix}.oob_write"))

    def constant(self, geometry: Geometry, values: Mapping[str, int]) -> Any:
        """A chunk of constants from its values by flat name: a concrete state."""
        return self.build(geometry, lambda name, width: z3.BitVecVal(values[name], width))


LAYOUT_54 = ReleaseLayout(PcpuChunk54, SymChunk54, SymBlockMd, RELEASE_BLOCK_FIELDS, RELEASE_CHUNK_FIELDS,
                          ("chunk_md",))
LAYOUT_414 = ReleaseLayout(PcpuChunk414, SymChunk414, SymBlock, BLOCK_FIELDS, CHUNK414_FIELDS, ())
RELEASE_LAYOUTS = (LAYOUT_54, LAYOUT_414)


def release_layout(chunk: object) -> ReleaseLayout | None:
    """The release layout of a model chunk or of a symbolic chunk; None for the 2017 posting's."""
    for layout in RELEASE_LAYOUTS:
        if isinstance(chunk, (layout.model_chunk, layout.sym_chunk)):
            return layout
    return None


def fresh_chunk54(geometry: Geometry, prefix: str) -> SymChunk54:
    """An arbitrary 5.2-layout chunk state: every field an unconstrained variable named ``prefix.field``."""
    return LAYOUT_54.fresh(geometry, prefix)  # type: ignore[no-any-return]


def _release_well_formed(chunk: SymReleaseChunk) -> list[z3.BoolRef]:
    """What both release layouts' ranges share: ``free_bytes`` a multiple of ``PCPU_MIN_ALLOC_SIZE`` in
    ``[0, chunk bytes]``, and the population, slot and ghost of every layout."""
    n = chunk.geometry.nr_bits
    return [
        chunk.free_bytes >= 0,
        chunk.free_bytes <= n * PCPU_MIN_ALLOC_SIZE,
        chunk.free_bytes & (PCPU_MIN_ALLOC_SIZE - 1) == 0,
        *population_and_ghost_well_formed(chunk),
    ]


def well_formed54(chunk: SymChunk54) -> z3.BoolRef:
    """Ranges every C field has in any state (not invariants: what the types and the code's arithmetic give).

    Each ``pcpu_block_md`` field lies in ``[0, nr_bits]`` of what it covers
    (a block's page, or the chunk's bits for ``chunk_md``), and ``_release_well_formed``.
    """
    B, n = chunk.geometry.block_bits, chunk.geometry.nr_bits
    conds = _release_well_formed(chunk)
    for md, size in [*((b, B) for b in chunk.md_blocks), (chunk.chunk_md, n)]:
        for f in RELEASE_BLOCK_FIELDS:
            conds += [getattr(md, f) >= 0, getattr(md, f) <= size]
    return z3.And(conds)


def well_formed414(chunk: SymChunk414) -> z3.BoolRef:
    """``well_formed54``'s ranges for 4.14's chunk: each block field in ``[0, B]``, ``contig_bits`` and its
    start and ``first_bit`` in ``[0, nr_bits]``, and ``_release_well_formed``."""
    B, n = chunk.geometry.block_bits, chunk.geometry.nr_bits
    conds = _release_well_formed(chunk)
    for f in ("contig_bits", "contig_bits_start", "first_bit"):
        conds += [getattr(chunk, f) >= 0, getattr(chunk, f) <= n]
    for b in chunk.md_blocks:
        for f in BLOCK_FIELDS:
            conds += [getattr(b, f) >= 0, getattr(b, f) <= B]
    return z3.And(conds)
