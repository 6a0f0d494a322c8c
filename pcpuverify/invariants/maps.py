"""Invariants of the maps: ``free_bits``, ``bound_map``, ``first_free_block`` and the hidden static region."""

from __future__ import annotations

from collections.abc import Iterator

import z3

from pcpuverify.invariants.base import state_invariant
from pcpuverify.invariants.scan import bits_of, first_zero
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.symbolic.bv import I, low_mask, popcount, smin
from pcpuverify.symbolic.state import SymChunk


@state_invariant(
    "free-bits-count",
    patch="PATCH 09/10 (struct pcpu_chunk)",
    seed="int free_bits; /* free bits in the chunk */",
)
def free_bits_count(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    nbits = chunk.alloc_map.nbits
    free = nbits - bin(chunk.alloc_map.value).count("1")
    if chunk.free_bits != free:
        yield "free_bits", f"free_bits {chunk.free_bits}, alloc_map has {free} free bits"


@state_invariant(
    "alloc-map-is-allocations",
    patch="PATCH 00/10 (cover letter)",
    seed="The allocation map serves as the ground truth for allocations",
)
def alloc_map_is_allocations(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    """``alloc_map`` has exactly the bits of the live allocations set."""
    covered = 0
    for start, size in chunk.allocations.items():
        covered |= ((1 << size) - 1) << start
    stray = chunk.alloc_map.value & ~covered
    if stray:
        bit = (stray & -stray).bit_length() - 1
        yield "alloc_map", f"alloc_map bit {bit} is set but no live allocation covers it"


@state_invariant(
    "bound-map-marks-allocations",
    patch="PATCH 00/10 (cover letter)",
    seed="""The allocation map serves as the ground truth for allocations while the
    boundary map serves as a way to distinguish between consecutive allocations.""",
)
def bound_map_marks_allocations(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    """Every live allocation is set in ``alloc_map``, and ``bound_map`` marks its start and end and nothing inside."""
    amap, bmap = chunk.alloc_map.value, chunk.bound_map.value
    for start, size in sorted(chunk.allocations.items()):
        end = start + size
        if any(b == 0 for b in bits_of(amap, start, size)) or end > chunk.alloc_map.nbits:
            yield "alloc_map", f"allocation [{start}, {end}) is not all set in alloc_map"
        if not (bmap >> start) & 1:
            yield "bound_map", f"bound_map bit {start} (start of allocation [{start}, {end})) is clear"
        if not (bmap >> end) & 1:
            yield "bound_map", f"bound_map bit {end} (end of allocation [{start}, {end})) is clear"
        inside = [start + 1 + i for i, b in enumerate(bits_of(bmap, start + 1, size - 1)) if b]
        if inside:
            yield "bound_map", f"bound_map bit {inside[0]} is set inside allocation [{start}, {end})"


@state_invariant(
    "no-free-bit-below-first-free-block",
    patch="PATCH 09/10 (struct pcpu_chunk)",
    seed="int first_free_block; /* block that contains the first free bit */",
)
def no_free_bit_below_first_free_block(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    below = min(chunk.first_free_block * alloc.PCPU_BITMAP_BLOCK_SIZE, chunk.alloc_map.nbits)
    free = first_zero(bits_of(chunk.alloc_map.value, 0, chunk.alloc_map.nbits))
    if free < below:
        yield "first_free_block", f"first_free_block {chunk.first_free_block} but bit {free} is free"


@state_invariant(
    "static-overlap-hidden",
    patch="PATCH 05/10 and 09/10 (pcpu_setup_first_chunk)",
    seed="""If the beginning of the reserved region overlaps the end of the static region,
    hide that portion in the metadata.""",
)
def static_overlap_hidden(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    """Every static byte in the first page of the chunk next to the static region is allocated there.

    That chunk is the reserved chunk when there is one, else the first
    (dynamic) chunk; its bit 0 starts at the static region's last page.
    """
    adjacent = alloc.pcpu_reserved_chunk or alloc.pcpu_first_chunk
    if chunk is not adjacent:
        return
    bits = -(-alloc.pcpu_reserved_offset // PCPU_MIN_ALLOC_SIZE)  # round up: a partly static bit
    free = first_zero(bits_of(chunk.alloc_map.value, 0, bits))
    if free < bits:
        yield (
            "alloc_map",
            f"bit {free} holds static bytes (pcpu_reserved_offset {alloc.pcpu_reserved_offset})"
            " but is free in alloc_map",
        )


# -- the Z3 side ---------------------------------------------------------------------


@free_bits_count.symbolic
def _free_bits_count(chunk: SymChunk) -> z3.BoolRef:
    return chunk.free_bits == chunk.nr_bits - popcount(chunk.alloc_map, chunk.nr_bits)


@alloc_map_is_allocations.symbolic
def _alloc_map_is_allocations(chunk: SymChunk) -> z3.BoolRef:
    gw, n = chunk.g_used.size(), chunk.nr_bits
    return z3.ZeroExt(gw - n, chunk.alloc_map) & ~chunk.g_used == 0


@bound_map_marks_allocations.symbolic
def _bound_map_marks_allocations(chunk: SymChunk) -> z3.BoolRef:
    gw = chunk.g_used.size()
    n = chunk.nr_bits
    amap = z3.ZeroExt(gw - n, chunk.alloc_map)
    bmap = z3.ZeroExt(gw - n - 1, chunk.bound_map)
    starts, used = chunk.g_start, chunk.g_used
    ends = (used << 1) & (~used | starts)  # e with e-1 allocated and e free or another start
    return z3.And(
        used & ~amap == 0,  # every allocated bit is set in alloc_map (and inside the chunk)
        starts & ~bmap == 0,  # bound_map marks each start
        ends & ~bmap == 0,  # ... and each end
        used & ~starts & bmap == 0,  # ... and nothing inside an allocation
    )


@no_free_bit_below_first_free_block.symbolic
def _no_free_bit_below_first_free_block(chunk: SymChunk) -> z3.BoolRef:
    below = low_mask(smin(chunk.first_free_block * chunk.geometry.block_bits, I(chunk.nr_bits)), chunk.nr_bits)
    return chunk.alloc_map & below == below
