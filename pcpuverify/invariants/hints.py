"""Invariants of the hints: the chunk's ``contig_hint`` and each block's ``pcpu_bitmap_md``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import z3

from pcpuverify.invariants.base import state_invariant
from pcpuverify.invariants.scan import bits_of, first_zero, free_runs, leading_free, longest_free, trailing_free
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.symbolic.bv import I, Int, bit, has_run, highest_set, lowest_set, range_mask
from pcpuverify.symbolic.state import SymBlock, SymChunk


def _map_bits(chunk: PcpuChunk) -> list[int]:
    return bits_of(chunk.alloc_map.value, 0, chunk.alloc_map.nbits)


@state_invariant(
    "chunk-contig-hint-not-above-free-run",
    patch="PATCH 00/10 and 09/10 (cover letter, commit message)",
    seed="""Metadata is always kept accurate on allocation and therefore the situation
    where a chunk has a larger contig_hint than available will never occur.""",
)
def chunk_contig_hint_not_above_free_run(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    longest = longest_free(_map_bits(chunk))
    if chunk.contig_hint > longest:
        yield "contig_hint", f"contig_hint {chunk.contig_hint} > longest free run {longest}"


@state_invariant(
    "chunk-contig-hint-region-free",
    patch="PATCH 10/10 (pcpu_alloc_area comment)",
    seed="""The search for the start is limited to be within a block_size, but should in
    reality never be hit as the contig_hint should be a valid placement.""",
)
def chunk_contig_hint_region_free(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    start, end = chunk.contig_hint_start, chunk.contig_hint_start + chunk.contig_hint
    if chunk.contig_hint == 0:
        return
    if start < 0 or end > chunk.alloc_map.nbits:
        yield "contig_hint_start", f"hint region [{start}, {end}) leaves the chunk of {chunk.alloc_map.nbits} bits"
        return
    used = [i for i, b in enumerate(bits_of(chunk.alloc_map.value, start, end - start)) if b]
    if used:
        yield "contig_hint_start", f"hint region [{start}, {end}) holds allocated bit {start + used[0]}"


@state_invariant(
    "block-hints-match-scan",
    patch="PATCH 09/10 (struct pcpu_bitmap_md, pcpu_block_refresh_hint)",
    seed="""The metadata blocks provide a bound on the amount of scanning required by
    maintaining a set of hints.""",
)
def block_hints_match_scan(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    """Each block's hints equal a fresh scan of its bits, as exactly as the code relies on them.

    ``contig_hint``, ``left_free`` and ``right_free`` are exact; ``contig_hint_start``
    starts a maximal free run of ``contig_hint`` bits (a tie may be won by any
    such run: the refresh keeps the first, a free keeps the older one);
    ``first_free`` is never above the block's first free bit.
    """
    B = alloc.PCPU_BITMAP_BLOCK_SIZE
    for i, block in enumerate(chunk.md_blocks):
        bits = bits_of(chunk.alloc_map.value, i * B, B)
        runs = free_runs(bits)
        longest = max((r.length for r in runs), default=0)
        where = f"md_blocks[{i}]"
        if block.contig_hint != longest:
            yield f"{where}.contig_hint", f"{where}.contig_hint {block.contig_hint}, a scan gives {longest}"
        elif longest and not any(r.start == block.contig_hint_start and r.length == longest for r in runs):
            yield (
                f"{where}.contig_hint_start",
                f"{where}.contig_hint_start {block.contig_hint_start} does not start a free run of {longest}",
            )
        if block.left_free != leading_free(bits):
            yield f"{where}.left_free", f"{where}.left_free {block.left_free}, a scan gives {leading_free(bits)}"
        if block.right_free != trailing_free(bits):
            yield f"{where}.right_free", f"{where}.right_free {block.right_free}, a scan gives {trailing_free(bits)}"
        if block.first_free > first_zero(bits):
            yield f"{where}.first_free", f"{where}.first_free {block.first_free} > first free bit {first_zero(bits)}"


@state_invariant(
    "chunk-contig-hint-within-a-block",
    patch="PATCH 00/10 and 09/10 (cover letter, commit message)",
    seed="""This causes the chunk's contig_hint to be potentially smaller than what it
    could allocate by up to a block.""",
)
def chunk_contig_hint_within_a_block(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    longest = longest_free(_map_bits(chunk))
    if longest - chunk.contig_hint > alloc.PCPU_BITMAP_BLOCK_SIZE:
        yield (
            "contig_hint",
            f"contig_hint {chunk.contig_hint} is {longest - chunk.contig_hint} bits below the longest"
            f" free run {longest}, more than a block ({alloc.PCPU_BITMAP_BLOCK_SIZE})",
        )


@state_invariant(
    "chunk-contig-hint-exact-below-a-block",
    patch="PATCH 00/10 and 09/10 (cover letter, commit message)",
    seed="""If the chunk's contig_hint is smaller than a block, a check occurs and the
    hint is kept accurate.""",
)
def chunk_contig_hint_exact_below_a_block(alloc: PcpuAllocator, chunk: PcpuChunk) -> Iterator[tuple[str, str]]:
    """Below a block the hint is accurate: its length is the longest free run, and it is placed on one.

    The hint is ``contig_hint`` and ``contig_hint_start``: PATCH 10 starts the
    search at the start "as the contig_hint should be a valid placement".
    """
    B = alloc.PCPU_BITMAP_BLOCK_SIZE
    if chunk.contig_hint >= B:
        return
    longest = longest_free(_map_bits(chunk))
    if chunk.contig_hint != longest:
        yield "contig_hint", f"contig_hint {chunk.contig_hint} is below a block ({B}) but the longest free run is {longest}"
        return
    start = chunk.contig_hint_start
    region = bits_of(chunk.alloc_map.value, start, chunk.contig_hint) if 0 <= start <= start + chunk.contig_hint <= (
        chunk.alloc_map.nbits) else None
    if chunk.contig_hint and (region is None or any(region)):
        yield (
            "contig_hint_start",
            f"contig_hint {chunk.contig_hint} is below a block ({B}) but [{start}, {start + chunk.contig_hint})"
            " is not free",
        )


# -- the Z3 side ---------------------------------------------------------------------


def block_seg(chunk: SymChunk, i: int) -> z3.BitVecRef:
    """Block ``i``'s bits of the chunk's ``alloc_map`` (set = allocated)."""
    B = chunk.geometry.block_bits
    return z3.Extract((i + 1) * B - 1, i * B, chunk.alloc_map)


def _longest_is(free: z3.BitVecRef, n: int, length: Int) -> z3.BoolRef:
    """The longest run of set bits in ``free`` has exactly ``length`` bits."""
    return z3.And(has_run(free, n, length), z3.Not(has_run(free, n, length + 1)))


# "some free run of at least this many bits exists" in a chunk: read off its bitmap here, off its blocks' metadata
# in proofs/run_bridge.py, where a lemma proves the two the same while the blocks' hints match their bits
Runs = Callable[[Int], z3.BoolRef]


def map_runs(chunk: SymChunk) -> Runs:
    """Runs read off the chunk's whole bitmap."""
    return lambda length: has_run(~chunk.alloc_map, chunk.nr_bits, length)


def _not_above_free_run(chunk: SymChunk, runs: Runs) -> z3.BoolRef:
    return runs(chunk.contig_hint)


def _within_a_block(chunk: SymChunk, runs: Runs) -> z3.BoolRef:
    return z3.Not(runs(chunk.contig_hint + chunk.geometry.block_bits + 1))


def _exact_below_a_block(chunk: SymChunk, runs: Runs) -> z3.BoolRef:
    B = chunk.geometry.block_bits
    start, end = chunk.contig_hint_start, chunk.contig_hint_start + chunk.contig_hint
    placed = z3.Or(chunk.contig_hint == 0, z3.And(start >= 0, start <= end, end <= chunk.nr_bits,
                                                  chunk.alloc_map & range_mask(start, end, chunk.nr_bits) == 0))
    longest = z3.And(runs(chunk.contig_hint), z3.Not(runs(chunk.contig_hint + 1)))
    return z3.Implies(chunk.contig_hint < B, z3.And(longest, placed))


# the chunk invariants that read the longest free run of the whole bitmap, each as a function of ``Runs``
CHUNK_RUN_INVARIANTS: dict[str, Callable[[SymChunk, Runs], z3.BoolRef]] = {
    "chunk-contig-hint-not-above-free-run": _not_above_free_run,
    "chunk-contig-hint-within-a-block": _within_a_block,
    "chunk-contig-hint-exact-below-a-block": _exact_below_a_block,
}


@chunk_contig_hint_not_above_free_run.symbolic
def _chunk_contig_hint_not_above_free_run(chunk: SymChunk) -> z3.BoolRef:
    return _not_above_free_run(chunk, map_runs(chunk))


@chunk_contig_hint_region_free.symbolic
def _chunk_contig_hint_region_free(chunk: SymChunk) -> z3.BoolRef:
    start, end = chunk.contig_hint_start, chunk.contig_hint_start + chunk.contig_hint
    inside = z3.And(start >= 0, end <= chunk.nr_bits)
    return z3.Or(
        chunk.contig_hint == 0,
        z3.And(inside, chunk.alloc_map & range_mask(start, end, chunk.nr_bits) == 0),
        z3.And(z3.Not(inside), end < start),  # a negative hint: an empty region, as the concrete check reads it
    )


def block_scan_parts(seg: z3.BitVecRef, block: SymBlock, B: int) -> dict[str, z3.BoolRef]:
    """``block-hints-match-scan`` of one block (bits ``seg``, set = allocated) but for its one universal claim.

    What is left out is "no free run of ``contig_hint + 1`` bits", the second half of ``_longest_is``; the
    first half, "a run of ``contig_hint`` bits", follows from ``maximal``.  The block contracts at 1024 bits
    state the claim left out at chosen positions only (``proofs/blocks/instances.py``).
    """
    free = ~seg
    h, s = block.contig_hint, block.contig_hint_start
    # contig_hint_start starts a maximal free run of contig_hint bits
    maximal = z3.And(
        s >= 0,
        s + h <= B,
        seg & range_mask(s, s + h, B) == 0,
        z3.Or(s == 0, bit(seg, s - 1, B)),
        z3.Or(s + h == B, bit(seg, s + h, B)),
    )
    return {
        "maximal": z3.Or(h == 0, maximal),
        "left_free": block.left_free == z3.If(seg == 0, I(B), lowest_set(seg, B)),
        "right_free": block.right_free == z3.If(seg == 0, I(B), I(B - 1) - highest_set(seg, B)),
        "first_free": block.first_free <= z3.If(free == 0, I(B), lowest_set(free, B)),
    }


@block_hints_match_scan.symbolic
def _block_hints_match_scan(chunk: SymChunk) -> z3.BoolRef:
    B = chunk.geometry.block_bits
    conds = []
    for i, block in enumerate(chunk.md_blocks):
        seg = block_seg(chunk, i)
        parts = block_scan_parts(seg, block, B)
        conds += [_longest_is(~seg, B, block.contig_hint), *parts.values()]
    return z3.And(conds)


@chunk_contig_hint_within_a_block.symbolic
def _chunk_contig_hint_within_a_block(chunk: SymChunk) -> z3.BoolRef:
    return _within_a_block(chunk, map_runs(chunk))


@chunk_contig_hint_exact_below_a_block.symbolic
def _chunk_contig_hint_exact_below_a_block(chunk: SymChunk) -> z3.BoolRef:
    return _exact_below_a_block(chunk, map_runs(chunk))
