"""Invariants of one operation: what an alloc returns, what a free releases, where the scans go."""

from __future__ import annotations

from collections.abc import Iterator

import z3

from pcpuverify.invariants.base import ChunkSnapshot, step_invariant
from pcpuverify.invariants.scan import bits_of
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.ops import Alloc, Free
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.model.reference import StepResult
from pcpuverify.symbolic.bv import I, Bits, range_mask, smin
from pcpuverify.symbolic.encode import SymStep
from pcpuverify.symbolic.state import SymChunk, SymOp


@step_invariant(
    "bitmap-access-in-bounds",
    patch="PATCH 10/10 (commit message)",
    seed="""An offset should never be returned unless it is known to fit, so here we just
    bind the scanning to the size of a block.""",
)
def bitmap_access_in_bounds(
    alloc: PcpuAllocator, before: ChunkSnapshot, step: StepResult, chunk: PcpuChunk
) -> Iterator[tuple[str, str]]:
    for access in step.accesses:
        yield access.bitmap, access.describe()


@step_invariant(
    "alloc-returns-aligned-free-offset",
    patch="PATCH 09/10 (pcpu_find_block_fit, pcpu_alloc_area)",
    seed="""This is done by iterating over the bitmap metadata blocks and then only
    returning regions that will be guaranteed to fit alignment""",
)
def alloc_returns_aligned_free_offset(
    alloc: PcpuAllocator, before: ChunkSnapshot, step: StepResult, chunk: PcpuChunk
) -> Iterator[tuple[str, str]]:
    op = step.op
    if not isinstance(op, Alloc) or step.bit_off is None:
        return
    off, end = step.bit_off, step.bit_off + op.bits
    if off % op.align:
        yield "alloc_map", f"alloc returned bit {off}, not aligned to {op.align}"
    if end > chunk.alloc_map.nbits:
        yield "alloc_map", f"alloc returned [{off}, {end}), past the chunk's {chunk.alloc_map.nbits} bits"
    used = [off + i for i, b in enumerate(bits_of(before.alloc_map, off, op.bits)) if b]
    if used:
        yield "alloc_map", f"alloc returned [{off}, {end}) but bit {used[0]} was already allocated"


@step_invariant(
    "free-releases-one-allocation",
    reads_post_state=True,
    patch="PATCH 09/10 (pcpu_free_area)",
    seed="""This function determines the size of an allocation to free using the boundary
    bitmap and clears the allocation map.""",
)
def free_releases_one_allocation(
    alloc: PcpuAllocator, before: ChunkSnapshot, step: StepResult, chunk: PcpuChunk
) -> Iterator[tuple[str, str]]:
    op = step.op
    if not isinstance(op, Free):
        return
    size = before.allocations[op.bit_off]
    expected = before.alloc_map & ~(((1 << size) - 1) << op.bit_off)
    if chunk.alloc_map.value != expected:
        changed = chunk.alloc_map.value ^ expected
        bit = (changed & -changed).bit_length() - 1
        yield "alloc_map", f"free of [{op.bit_off}, {op.bit_off + size}) changed alloc_map bit {bit} wrongly"
    if chunk.free_bits - before.free_bits != size:
        yield "free_bits", f"free of {size} bits raised free_bits by {chunk.free_bits - before.free_bits}"


@step_invariant(
    "pop-only-alloc-on-populated-pages",
    patch="PATCH 09/10 (pcpu_is_populated)",
    seed="For atomic allocations, we must check if the backing pages are populated.",
)
def pop_only_alloc_on_populated_pages(
    alloc: PcpuAllocator, before: ChunkSnapshot, step: StepResult, chunk: PcpuChunk
) -> Iterator[tuple[str, str]]:
    op = step.op
    if not isinstance(op, Alloc) or not op.pop_only or step.bit_off is None:
        return
    B = alloc.PCPU_BITMAP_BLOCK_SIZE
    first, last = step.bit_off // B, (step.bit_off + op.bits - 1) // B
    unpopulated = [p for p in range(first, last + 1) if not (before.populated >> p) & 1]
    if unpopulated:
        yield "populated", f"atomic alloc placed [{step.bit_off}, {step.bit_off + op.bits}) on unpopulated page {unpopulated[0]}"


# -- the Z3 side ---------------------------------------------------------------------


@bitmap_access_in_bounds.symbolic
def _bitmap_access_in_bounds(pre: SymChunk, op: SymOp, step: SymStep) -> z3.BoolRef:
    return z3.Not(step.post.oob)


@alloc_returns_aligned_free_offset.symbolic
def _alloc_returns_aligned_free_offset(pre: SymChunk, op: SymOp, step: SymStep) -> z3.BoolRef:
    if op.kind != "alloc":
        return z3.BoolVal(True)
    off, n = step.bit_off, pre.nr_bits
    return z3.Implies(
        step.ok,
        z3.And(
            off & (op.align - 1) == 0,
            off + op.bits <= n,
            pre.alloc_map & range_mask(off, off + op.bits, n) == 0,
        ),
    )


@free_releases_one_allocation.symbolic
def _free_releases_one_allocation(pre: SymChunk, op: SymOp, step: SymStep) -> z3.BoolRef:
    if op.kind != "free":
        return z3.BoolVal(True)
    gw, n = pre.g_used.size(), pre.nr_bits
    end = smin(
        Bits(pre.g_start, gw).find_next_bit(I(gw), op.bit_off + 1)[0],
        Bits(pre.g_used, gw).find_next_zero_bit(I(gw), op.bit_off + 1)[0],
    )
    return z3.And(
        step.post.alloc_map == pre.alloc_map & ~range_mask(op.bit_off, end, n),
        step.post.free_bits - pre.free_bits == end - op.bit_off,
    )


@pop_only_alloc_on_populated_pages.symbolic
def _pop_only_alloc_on_populated_pages(pre: SymChunk, op: SymOp, step: SymStep) -> z3.BoolRef:
    if op.kind != "alloc":
        return z3.BoolVal(True)
    shift = pre.geometry.block_bits.bit_length() - 1
    N = pre.geometry.nr_pages
    first, last = step.bit_off >> shift, (step.bit_off + op.bits - 1) >> shift
    return z3.Implies(
        z3.And(step.ok, op.pop_only),
        z3.And(last < N, ~pre.populated & range_mask(first, last + 1, N) == 0),
    )
