"""Every state of a scan_hint chunk's bits and hints the model reaches: the seeds of the joined closed set.

``block_states.py`` lists a one-block chunk's block state and ``chunk_md``'s
hints together, one joined state per chunk (``joined``), because the
counterexamples to induction of the three ``chunk_md`` rows ``mainline`` left
open at 1x8 join a block and hints that no trace joins.  The solver grows that set
one state per query, which is too slow from the few thousand states random
walks meet (``docs/releases.md``).  This search meets them all first.

It searches ``model/`` breadth first over what the closed sets and the
hint updates read: ``alloc_map``, ``md_blocks`` and ``chunk_md``.  The rest
of the chunk is left out, and the search lets through every step it could
make:
- a free may release any run of allocated bits, as it may in the solver's
  pre-states (``bound_map`` is written by an allocation and read only by the
  free that ends it);
- an allocation skips ``pcpu_alloc``'s slot check (which can only refuse
  it), and an atomic one sees each set of populated pages (population
  changes no hint).

So what it reaches is every state the model reaches and perhaps more, as a
seed needs (a seed no trace reaches can only keep rows open).  At 1x8
(``mainline``) it reaches a fixpoint: 341,068 states, 18,063 joined states,
in about 80 s on one core.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import NamedTuple

from pcpuverify.model.geometry import Geometry
from pcpuverify.model.linux_5_4 import Linux54, PcpuBlockMd, PcpuChunk54
from pcpuverify.model.percpu import PCPU_MIN_ALLOC_SIZE
from pcpuverify.model.release_chunk import flat_fields
from pcpuverify.symbolic.state import block_key
from pcpuverify.symbolic.subjects import subject

MD_FIELDS = tuple(f.name for f in fields(PcpuBlockMd))
# alloc_map, then each block's md fields, then chunk_md's
HintKey = tuple[int, tuple[tuple[int, ...], ...], tuple[int, ...]]


class _Chunk:
    """One model chunk, set to a searched state before each step (no copy per step: a tenth of the time)."""

    def __init__(self, alloc: Linux54) -> None:
        self.alloc = alloc
        self.chunk: PcpuChunk54 = alloc.pcpu_alloc_chunk()
        self.nr_bits = alloc.pcpu_chunk_map_bits(self.chunk)

    def key(self) -> HintKey:
        c = self.chunk
        return (c.alloc_map.value, tuple(flat_fields(b) for b in c.md_blocks.blocks), flat_fields(c.chunk_md))

    def load(self, key: HintKey, populated: int) -> None:
        alloc_map, blocks, chunk_md = key
        c = self.chunk
        c.alloc_map.value = alloc_map
        for block, values in zip(c.md_blocks.blocks, blocks):
            block.__dict__.update(zip(MD_FIELDS, values))
        c.chunk_md.__dict__.update(zip(MD_FIELDS, chunk_md))
        c.free_bytes = (self.nr_bits - alloc_map.bit_count()) * PCPU_MIN_ALLOC_SIZE
        c.populated.value = populated
        c.log.clear()


def _successors(at: _Chunk, key: HintKey, geometry: Geometry) -> Iterator[HintKey]:
    """Every state one step takes ``key`` to: each allocation (size, alignment up to a block, atomic under each
    set of populated pages), then each free of a run of allocated bits."""
    alloc, chunk = at.alloc, at.chunk
    all_pages = (1 << geometry.nr_pages) - 1
    contig = key[2][MD_FIELDS.index("contig_hint")]
    for bits in range(1, contig + 1):  # pcpu_find_block_fit refuses anything longer than chunk_md's contig hint
        align = 1
        while align <= geometry.block_bits:
            for populated, atomic in ((all_pages, False), *((p, True) for p in range(all_pages))):
                at.load(key, populated)
                off = alloc.pcpu_find_block_fit(chunk, bits, align, atomic)
                if off >= 0 and alloc.pcpu_alloc_area(chunk, bits, align, off) >= 0 and not chunk.log:
                    yield at.key()
            align *= 2
    alloc_map = key[0]
    for start in range(at.nr_bits):
        end = start
        while end < at.nr_bits and alloc_map >> end & 1:
            end += 1
            at.load(key, all_pages)
            chunk.bound_map.value = 1 << start | 1 << end  # [start, end) is one allocation
            alloc.pcpu_free_area(chunk, start * PCPU_MIN_ALLOC_SIZE)
            if not chunk.log:
                yield at.key()


def values(key: HintKey) -> dict[str, int]:
    """A searched state as the flat field values ``block_states.py`` reads (``conformance.model_fields``' names)."""
    alloc_map, blocks, chunk_md = key
    out = {"alloc_map": alloc_map, **{f"chunk_md.{f}": v for f, v in zip(MD_FIELDS, chunk_md)}}
    for i, block in enumerate(blocks):
        out.update({block_key(i, f): v for f, v in zip(MD_FIELDS, block)})
    return out


class Reached(NamedTuple):
    states: int  # distinct states shown
    complete: bool  # a fixpoint: every state the search can reach was shown


def reach(variant: str, geometry: Geometry, max_states: int, on_state: Callable[[HintKey], None]) -> Reached:
    """Show every state reached from a new chunk to ``on_state``, breadth first, until a fixpoint or
    ``max_states`` distinct states."""
    model = subject(variant).model(geometry.block_bits, geometry.nr_pages)
    assert isinstance(model, Linux54), f"{variant} keeps no chunk_md"
    at = _Chunk(model)
    first = at.key()
    seen = {first}
    on_state(first)
    frontier = [first]
    while frontier:
        following: list[HintKey] = []
        for key in frontier:
            for after in _successors(at, key, geometry):
                if after in seen:
                    continue
                if len(seen) >= max_states:
                    return Reached(len(seen), False)
                seen.add(after)
                on_state(after)
                following.append(after)
        frontier = following
    return Reached(len(seen), True)
