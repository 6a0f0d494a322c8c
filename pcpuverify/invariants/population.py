"""Invariants of population: ``nr_populated`` and ``nr_empty_pop_pages`` against ``populated`` and the bitmap."""

from __future__ import annotations

from collections.abc import Iterator

import z3

from pcpuverify.invariants.base import state_invariant
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.symbolic.bv import I, bit, popcount
from pcpuverify.symbolic.state import SymChunk


@state_invariant(
    "nr-populated-matches-populated",
    patch="PATCH 08/10 and 09/10 (pcpu_chunk_populated, pcpu_chunk_depopulated)",
    seed="""This patch changes the allocator to only mark allocated pages for the region
    the population bitmap is used for.""",
)
def nr_populated_matches(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    weight = bin(chunk.populated.value).count("1")
    if chunk.nr_populated != weight:
        yield "nr_populated", f"nr_populated {chunk.nr_populated}, populated has {weight} pages"


@state_invariant(
    "nr-empty-pop-pages-matches-bitmap",
    patch="PATCH 08/10 (commit message)",
    seed="""A new field, nr_empty_pop_pages, is added to the pcpu_chunk struct to keep track
    of the number of empty pages.  This field is needed as the number of empty populated
    pages is globally kept track of and deltas are used to update it.""",
)
def nr_empty_pop_pages_matches(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    """``nr_empty_pop_pages`` counts the populated pages with no allocated bit; the global sums the chunks'."""
    B = alloc.PCPU_BITMAP_BLOCK_SIZE
    page_mask = (1 << B) - 1
    empty = sum(
        1
        for page in range(chunk.nr_pages)
        if (chunk.populated.value >> page) & 1 and not (chunk.alloc_map.value >> (page * B)) & page_mask
    )
    if chunk.nr_empty_pop_pages != empty:
        yield "nr_empty_pop_pages", f"nr_empty_pop_pages {chunk.nr_empty_pop_pages}, {empty} populated pages are empty"
    # the model has one chunk outside the reserved one: the global must equal its count
    if chunk is not alloc.pcpu_reserved_chunk and alloc.pcpu_nr_empty_pop_pages != chunk.nr_empty_pop_pages:
        yield (
            "pcpu_nr_empty_pop_pages",
            f"pcpu_nr_empty_pop_pages {alloc.pcpu_nr_empty_pop_pages} != chunk's {chunk.nr_empty_pop_pages}",
        )


# -- the Z3 side ---------------------------------------------------------------------


@nr_populated_matches.symbolic
def _nr_populated_matches(chunk: SymChunk) -> z3.BoolRef:
    return chunk.nr_populated == popcount(chunk.populated, chunk.geometry.nr_pages)


@nr_empty_pop_pages_matches.symbolic
def _nr_empty_pop_pages_matches(chunk: SymChunk) -> z3.BoolRef:
    B, N = chunk.geometry.block_bits, chunk.geometry.nr_pages
    empty: z3.ExprRef = I(0)
    for page in range(N):
        is_empty = z3.And(
            bit(chunk.populated, I(page), N), z3.Extract((page + 1) * B - 1, page * B, chunk.alloc_map) == 0
        )
        empty = empty + z3.If(is_empty, I(1), I(0))
    return z3.And(chunk.nr_empty_pop_pages == empty, chunk.pcpu_nr_empty_pop_pages == chunk.nr_empty_pop_pages)


@state_invariant(
    "allocations-on-populated-pages",
    patch="PATCH 09/10 (pcpu_is_populated)",
    seed="For atomic allocations, we must check if the backing pages are populated.",
)
def allocations_on_populated_pages(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    """Every page that holds an allocated bit is populated: the memory handed out is backed."""
    B = alloc.PCPU_BITMAP_BLOCK_SIZE
    for page in range(chunk.nr_pages):
        used = (chunk.alloc_map.value >> (page * B)) & ((1 << B) - 1)
        if used and not (chunk.populated.value >> page) & 1:
            yield "populated", f"page {page} holds allocated bits but is not populated"
            return


@allocations_on_populated_pages.symbolic
def _allocations_on_populated_pages(chunk: SymChunk) -> z3.BoolRef:
    B, N = chunk.geometry.block_bits, chunk.geometry.nr_pages
    return z3.And(
        *[
            z3.Or(bit(chunk.populated, I(page), N), z3.Extract((page + 1) * B - 1, page * B, chunk.alloc_map) == 0)
            for page in range(N)
        ]
    )
