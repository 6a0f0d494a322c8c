"""Invariants of the released allocators' hints: 4.14's chunk and blocks, and 5.2's scan_hint and ``chunk_md``.

Each states the sentence it encodes from the release's own comments
(mm/percpu.c or mm/percpu-internal.h of v4.14.5 and v5.4.286; 7.1.3 has the
same sentences) and judges the hints against fresh scans of the bitmap
(``scan``), never against the port.  Which chunk layouts each one applies
to is listed in ``applicability``.

The Z3 predicates (``Invariant.symbolic``) read the release's symbolic
chunk (symbolic/release_state.py): 5.2's ``SymChunk54``, and for the
invariants 4.14 shares, its ``SymChunk414`` too (``_sym_chunk_hint``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import z3

from pcpuverify.invariants.base import state_invariant
from pcpuverify.invariants.population import nr_empty_pop_pages_matches
from pcpuverify.invariants.scan import bits_of, first_zero, free_runs, leading_free, longest_free, trailing_free
from pcpuverify.model.linux_4_14 import PcpuChunk414
from pcpuverify.model.linux_5_4 import PcpuChunk54
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.symbolic.bv import I, Int, bit, has_run, highest_set, low_mask, lowest_set, range_mask, run_starts, smax
from pcpuverify.symbolic.release_state import SymBlockMd, SymChunk54, SymChunk414

ReleaseChunk = PcpuChunk414 | PcpuChunk54


def _map_bits(chunk: ReleaseChunk) -> list[int]:
    return bits_of(chunk.alloc_map.value, 0, chunk.alloc_map.nbits)


def _blocks(alloc: PcpuAllocator, chunk: ReleaseChunk) -> Iterator[tuple[str, Any, list[int]]]:
    """Each ``md_blocks[i]`` with its name and the bits it covers."""
    B = alloc.PCPU_BITMAP_BLOCK_SIZE
    for i, block in enumerate(chunk.md_blocks):
        yield f"md_blocks[{i}]", block, bits_of(chunk.alloc_map.value, i * B, B)


def _pcpu_block_mds(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, Any, list[int]]]:
    """Every ``struct pcpu_block_md`` of a 5.2 chunk: the blocks, then ``chunk_md`` over the whole map."""
    yield from _blocks(alloc, chunk)
    yield "chunk_md", chunk.chunk_md, _map_bits(chunk)


def _chunk_md(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, Any, list[int]]]:
    """``chunk_md`` over the whole map, for the ``chunk-md-`` twins of two of the three lemmas the proofs added.

    Each lemma is asked of the blocks and of ``chunk_md`` as two invariants, so that Houdini can drop one
    without the other: ``mainline`` breaks the ``chunk_md`` ones once the chunk has two blocks (its free
    path hands ``chunk_md`` a freed area block relative, gallery 12, or clipped to its block, gallery 17)
    and the blocks' ones (gallery 14 to 16 and 18); ``mainline-fixed`` keeps all of them.  The third,
    ``scan-hint-largest-before``, is false of ``chunk_md`` even there (gallery 19), and not asked of it.
    """
    yield "chunk_md", chunk.chunk_md, _map_bits(chunk)


def _region_free(bits: list[int], start: int, length: int) -> bool:
    """``[start, start + length)`` lies inside ``bits`` and holds no allocated bit."""
    return 0 <= start and start + length <= len(bits) and not any(bits[start:start + length])


def _chunk_hint(chunk: ReleaseChunk) -> tuple[str, int, int]:
    """The chunk's contig hint: ``(name, hint, start)`` -- 4.14's ``contig_bits``, 5.2's ``chunk_md``."""
    if isinstance(chunk, PcpuChunk414):
        return "contig_bits", chunk.contig_bits, chunk.contig_bits_start
    return "chunk_md.contig_hint", chunk.chunk_md.contig_hint, chunk.chunk_md.contig_hint_start


# -- scan_hint (5.2: "percpu: add block level scan_hint") -----------------------------


@state_invariant(
    "scan-hint-below-contig-hint",
    patch="v5.4 mm/percpu-internal.h (struct pcpu_block_md)",
    seed="""The scan hint is the largest known contiguous area before the contig hint.
    It is not necessarily the actual largest contig hint though.""",
)
def scan_hint_below_contig_hint(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    for where, md, _ in _pcpu_block_mds(alloc, chunk):
        if md.scan_hint > md.contig_hint:
            yield f"{where}.scan_hint", f"{where}.scan_hint {md.scan_hint} > contig_hint {md.contig_hint}"


@state_invariant(
    "scan-hint-before-contig-hint",
    patch="v5.4 mm/percpu-internal.h (struct pcpu_block_md)",
    seed="""There is an invariant that the scan_hint_start > contig_hint_start iff
    scan_hint == contig_hint.  This is necessary because when scanning forward,
    we don't know if a new contig hint would be better than the current one.""",
)
def scan_hint_before_contig_hint(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """For a scan hint (``scan_hint != 0``): ``scan_hint_start > contig_hint_start`` iff ``scan_hint == contig_hint``.

    So a scan hint smaller than the contig hint starts before it.
    """
    for where, md, _ in _pcpu_block_mds(alloc, chunk):
        if not md.scan_hint:
            continue
        after = md.scan_hint_start > md.contig_hint_start
        equal = md.scan_hint == md.contig_hint
        if after != equal:
            yield (
                f"{where}.scan_hint_start",
                (f"{where}: scan_hint_start {md.scan_hint_start} {'>' if after else '<='} contig_hint_start"
                f" {md.contig_hint_start} but scan_hint {md.scan_hint} {'==' if equal else '!='}"
                f" contig_hint {md.contig_hint}"),
            )


@state_invariant(
    "scan-hint-region-free",
    patch="v5.4 mm/percpu-internal.h (struct pcpu_block_md) and mm/percpu.c (pcpu_next_hint)",
    seed="""However, if we know a scan_hint at position scan_hint_start cannot fulfill an
    allocation, we can begin scanning from there knowing the contig_hint will be
    our fallback.""",
)
def scan_hint_region_free(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """A scan hint covers a free area of its block (or chunk): "the largest known contiguous area"."""
    yield from _scan_hints_not_free(_pcpu_block_mds(alloc, chunk))


def _scan_hints_not_free(mds: Iterator[tuple[str, Any, list[int]]]) -> Iterator[tuple[str, str]]:
    for where, md, bits in mds:
        if md.scan_hint and not _region_free(bits, md.scan_hint_start, md.scan_hint):
            yield (
                f"{where}.scan_hint_start",
                f"{where}: scan hint [{md.scan_hint_start}, {md.scan_hint_start + md.scan_hint}) is not free",
            )


def _overlapping_scan_hints(mds: Iterator[tuple[str, Any, list[int]]]) -> Iterator[tuple[str, str]]:
    for where, md, _ in mds:
        if md.scan_hint and not (md.scan_hint_start + md.scan_hint <= md.contig_hint_start
                                 or md.contig_hint_start + md.contig_hint <= md.scan_hint_start):
            yield (
                f"{where}.scan_hint_start",
                (f"{where}: scan hint [{md.scan_hint_start}, {md.scan_hint_start + md.scan_hint}) overlaps contig"
                 f" hint [{md.contig_hint_start}, {md.contig_hint_start + md.contig_hint})"),
            )


CLEAR_SEED = """The scan hint is the largest known contiguous area before the contig hint."""


@state_invariant("scan-hint-clear-of-contig-hint", patch="v5.4 mm/percpu-internal.h (struct pcpu_block_md)",
                 seed=CLEAR_SEED)
def scan_hint_clear_of_contig_hint(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """A block's scan hint does not overlap its contig hint: an area before it ends by its start (and one as
    large, which "scan_hint_start > contig_hint_start iff scan_hint == contig_hint" puts after it, starts past
    its end).

    Added by the proofs: without it ``block-contig-hint-exact`` is not inductive for alloc (a scan hint
    inside the contig hint is promoted by the refresh, which then scans forward from inside the run).
    """
    yield from _overlapping_scan_hints(_blocks(alloc, chunk))


@state_invariant("chunk-md-scan-hint-clear-of-contig-hint",
                 patch="v5.4 mm/percpu-internal.h (struct pcpu_block_md)", seed=CLEAR_SEED)
def chunk_md_scan_hint_clear_of_contig_hint(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """``scan-hint-clear-of-contig-hint`` of ``chunk_md``."""
    yield from _overlapping_scan_hints(_chunk_md(alloc, chunk))


def _in_longer_run(bits: list[int], start: int, length: int) -> bool:
    """A non-empty area inside ``bits`` with a free bit right before or right after it."""
    end = start + length
    return bool(length) and 0 <= start <= end <= len(bits) and (
        (start > 0 and not bits[start - 1]) or (end < len(bits) and not bits[end]))


def _scan_hints_in_longer_runs(mds: Iterator[tuple[str, Any, list[int]]]) -> Iterator[tuple[str, str]]:
    for where, md, bits in mds:
        if _in_longer_run(bits, md.scan_hint_start, md.scan_hint):
            yield (f"{where}.scan_hint_start", f"{where}: scan hint [{md.scan_hint_start},"
                   f" {md.scan_hint_start + md.scan_hint}) is part of a longer free run")


MAXIMAL_PATCH = "v5.4 mm/percpu.c (pcpu_block_refresh_hint, pcpu_chunk_refresh_hint)"


@state_invariant("scan-hint-maximal", patch=MAXIMAL_PATCH, seed="""promote scan_hint to contig_hint""")
def scan_hint_maximal(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """A block's scan hint is a whole free run: an allocated bit (or the edge) on each side.

    The refreshes promote the scan hint to the contig hint and scan forward from its end only, so a
    scan hint that is part of a longer run makes them miss that run.  Added by the proofs: without it
    ``block-contig-hint-exact`` and ``chunk-hint-accurate-in-one-block`` are not inductive for alloc.
    """
    yield from _scan_hints_in_longer_runs(_blocks(alloc, chunk))


@state_invariant("chunk-md-scan-hint-maximal", patch=MAXIMAL_PATCH, seed="""promote scan_hint to contig_hint""")
def chunk_md_scan_hint_maximal(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """``scan-hint-maximal`` of ``chunk_md``: ``pcpu_chunk_refresh_hint(chunk, false)`` promotes it."""
    yield from _scan_hints_in_longer_runs(_chunk_md(alloc, chunk))


def _longer_runs_before_scan_hints(mds: Iterator[tuple[str, Any, list[int]]]) -> Iterator[tuple[str, str]]:
    for where, md, bits in mds:
        if not md.scan_hint:
            continue
        # before the contig hint, or before the scan hint where that is the later (as large, past it)
        end = max(md.scan_hint_start, md.contig_hint_start, 0)
        before = [r for r in free_runs(bits[:end]) if r.length > md.scan_hint]
        if before:
            r = before[0]
            yield (f"{where}.scan_hint", f"{where}: free run [{r.start}, {r.start + r.length}) before the contig hint"
                   f" is longer than the scan hint {md.scan_hint}")


@state_invariant("scan-hint-largest-before", patch="v5.4 mm/percpu-internal.h (struct pcpu_block_md)",
                 seed=CLEAR_SEED)
def scan_hint_largest_before(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """No free run before a block's contig hint (or before its scan hint, when that is the one as large and past
    the contig hint) is longer than the scan hint: the refreshes promote the scan hint and scan forward from its
    end only ("knowing the contig_hint will be our fallback").  Added by the proofs: without it
    ``block-contig-hint-exact`` and ``chunk-hint-accurate-in-one-block`` are not inductive for alloc.  It was asked
    only of the runs before the scan hint until the 2x8 proofs' counterexample to induction showed a longer run
    between the two hints that the next farther free steps over (docs/gallery.md 18).

    Not asked of ``chunk_md``: its scans see each block's contig hint, not an area a block keeps apart behind an
    equal, better-aligned one, so its scan hint can lie past a longer area (docs/gallery.md 19).  With
    ``mainline-fixed``'s fix 9 it is never promoted, and ``pcpu_next_hint()`` skipping such an area only moves
    the allocation to a later fit (``chunk_md``'s contig hint, after it and exact).
    """
    yield from _longer_runs_before_scan_hints(_blocks(alloc, chunk))


# -- the blocks (4.14 and 5.2: the same struct comments) --------------------------------


@state_invariant(
    "block-contig-hint-exact",
    patch="v4.14 and v5.4 mm/percpu.c (pcpu_block_update_hint_alloc)",
    seed="""The metadata only has to be refreshed by a full scan iff the chunk's contig
    hint is broken.  Block level scans are required if the block's contig hint is broken.""",
)
def block_contig_hint_exact(alloc: PcpuAllocator, chunk: ReleaseChunk) -> Iterator[tuple[str, str]]:
    """Each block's ``contig_hint`` is its longest free run and ``contig_hint_start`` places it on free bits."""
    for where, block, bits in _blocks(alloc, chunk):
        longest = max((r.length for r in free_runs(bits)), default=0)
        if block.contig_hint != longest:
            yield f"{where}.contig_hint", f"{where}.contig_hint {block.contig_hint}, a scan gives {longest}"
        elif not _region_free(bits, block.contig_hint_start, block.contig_hint):
            yield (
                f"{where}.contig_hint_start",
                (f"{where}: contig hint [{block.contig_hint_start}, {block.contig_hint_start + block.contig_hint})"
                " is not free"),
            )


@state_invariant(
    "block-left-right-free-exact",
    patch="v4.14 and v5.4 mm/percpu-internal.h (struct pcpu_block_md)",
    seed="""int left_free; /* size of free space along the left side of the block */
    int right_free; /* size of free space along the right side of the block */""",
)
def block_left_right_free_exact(alloc: PcpuAllocator, chunk: ReleaseChunk) -> Iterator[tuple[str, str]]:
    for where, block, bits in _blocks(alloc, chunk):
        if block.left_free != leading_free(bits):
            yield f"{where}.left_free", f"{where}.left_free {block.left_free}, a scan gives {leading_free(bits)}"
        if block.right_free != trailing_free(bits):
            yield f"{where}.right_free", f"{where}.right_free {block.right_free}, a scan gives {trailing_free(bits)}"


@state_invariant(
    "first-free-not-above-first-free-bit",
    patch="v4.14 and v5.4 mm/percpu-internal.h (struct pcpu_block_md; 4.14 struct pcpu_chunk)",
    seed="""int first_free; /* block position of first free */
    int first_bit; /* no free below this */""",
)
def first_free_not_above_first_free_bit(alloc: PcpuAllocator, chunk: ReleaseChunk) -> Iterator[tuple[str, str]]:
    """No free bit below a block's ``first_free``, nor below the chunk's (4.14 ``first_bit``, 5.2 ``chunk_md.first_free``).

    The scans start there (``pcpu_next_hint``, ``pcpu_find_block_fit``), so
    this is what first fit needs.  It is not exact: a block an allocation
    wholly covers keeps its ``first_free`` (4.14 and 5.4 alike).
    """
    for where, block, bits in _blocks(alloc, chunk):
        if block.first_free > first_zero(bits):
            yield f"{where}.first_free", f"{where}.first_free {block.first_free} > first free bit {first_zero(bits)}"
    name, first = ("first_bit", chunk.first_bit) if isinstance(chunk, PcpuChunk414) else (
        "chunk_md.first_free", chunk.chunk_md.first_free)
    free = first_zero(_map_bits(chunk))
    if first > free:
        yield name, f"{name} {first} > first free bit {free}"


@state_invariant(
    "block-nr-bits",
    patch="v5.4 mm/percpu-internal.h (struct pcpu_block_md)",
    seed="int nr_bits; /* total bits responsible for */",
)
def block_nr_bits(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    for where, md, bits in _pcpu_block_mds(alloc, chunk):
        if md.nr_bits != len(bits):
            yield f"{where}.nr_bits", f"{where}.nr_bits {md.nr_bits}, it covers {len(bits)} bits"


@state_invariant(
    "hints-inside-their-bits",
    patch="v5.4 mm/percpu-internal.h (struct pcpu_block_md)",
    seed="""int scan_hint_start; /* block relative starting position of the scan hint */
    int contig_hint_start; /* block relative starting position of the contig hint */
    int nr_bits; /* total bits responsible for */""",
)
def hints_inside_their_bits(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """Each ``pcpu_block_md``'s contig hint, and its scan hint when there is one, lie inside the bits it is
    responsible for, and its ``first_free`` is not past them.

    Weaker than ``block-contig-hint-exact`` and ``scan-hint-region-free``
    (where the area is, not that it is free or longest), so it survives
    where ``mainline`` breaks those: the proofs keep it as the lemma that
    the scans it starts stay inside the bitmap (``bitmap-access-in-bounds``
    at 1x8).
    """
    for where, md, bits in _pcpu_block_mds(alloc, chunk):
        n = len(bits)
        if not 0 <= md.contig_hint_start <= md.contig_hint_start + md.contig_hint <= n:
            yield (f"{where}.contig_hint_start",
                   f"{where}: contig hint [{md.contig_hint_start}, {md.contig_hint_start + md.contig_hint}) is not"
                   f" inside its {n} bits")
        if md.scan_hint and not 0 <= md.scan_hint_start <= md.scan_hint_start + md.scan_hint <= n:
            yield (f"{where}.scan_hint_start",
                   f"{where}: scan hint [{md.scan_hint_start}, {md.scan_hint_start + md.scan_hint}) is not inside"
                   f" its {n} bits")
        if not 0 <= md.first_free <= n:
            yield f"{where}.first_free", f"{where}.first_free {md.first_free} is not inside its {n} bits"


@state_invariant(
    "block-hints-on-free-bits",
    patch="v5.4 mm/percpu-internal.h (struct pcpu_block_md) and mm/percpu.c (pcpu_next_fit_region)",
    seed="""int scan_hint; /* scan hint for block */
    int contig_hint; /* contig hint for block */
    int right_free; /* size of free space along the right side of the block */""",
)
def block_hints_on_free_bits(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """Each block's contig hint, its scan hint, and the ``right_free`` bits at its end are free: the areas
    ``pcpu_next_fit_region`` offers an allocation from (a fit inside one block, or one across its edge), and
    the area a refresh promotes.

    Weaker than ``block-contig-hint-exact`` and ``block-left-right-free-exact`` (free, not longest, not
    exact), so it survives where ``mainline`` breaks those (gallery 13 to 16): it is the lemma that settles
    five of ``mainline``'s rows at 1x8 (``docs/releases.md``).  The scan hint's part is
    ``scan-hint-region-free``'s for the blocks alone, so that Houdini keeps it where it drops ``chunk_md``'s.
    ``left_free`` is not claimed: Houdini drops "``left_free`` bits are free" for ``mainline`` (a refresh from
    a promoted scan hint does not recompute it).
    """
    for where, block, bits in _blocks(alloc, chunk):
        if not _region_free(bits, block.contig_hint_start, block.contig_hint):
            yield (f"{where}.contig_hint_start",
                   f"{where}: contig hint [{block.contig_hint_start}, {block.contig_hint_start + block.contig_hint})"
                   " is not free")
        if not (0 <= block.right_free and _region_free(bits, len(bits) - block.right_free, block.right_free)):
            yield f"{where}.right_free", f"{where}.right_free {block.right_free}: its bits are not all free"
    yield from _scan_hints_not_free(_blocks(alloc, chunk))


# -- the chunk's hint (4.14 contig_bits, 5.2 chunk_md) -----------------------------------


@state_invariant(
    "chunk-hint-never-above-available",
    patch="v4.14 and v5.4 mm/percpu.c (pcpu_block_update_hint_free)",
    seed="""chunk_md->contig_hint may be off by up to a page, but it will never be more
    than the available space.""",
)
def chunk_hint_never_above_available(alloc: PcpuAllocator, chunk: ReleaseChunk) -> Iterator[tuple[str, str]]:
    """The chunk hint is at most the longest free run, and lies on free bits (4.14: "chunk->contig_bits ...")."""
    name, hint, start = _chunk_hint(chunk)
    bits = _map_bits(chunk)
    longest = longest_free(bits)
    if hint > longest:
        yield name, f"{name} {hint} > longest free run {longest}"
    elif hint and not _region_free(bits, start, hint):
        yield f"{name}_start", f"{name} region [{start}, {start + hint}) is not free"


@state_invariant(
    "chunk-hint-off-by-at-most-a-page",
    patch="v4.14 and v5.4 mm/percpu.c (pcpu_block_update_hint_free)",
    seed="""chunk_md->contig_hint may be off by up to a page""",
)
def chunk_hint_off_by_at_most_a_page(alloc: PcpuAllocator, chunk: ReleaseChunk) -> Iterator[tuple[str, str]]:
    """The longest free run exceeds the chunk hint by at most a page (``PAGE_SIZE`` in bits: one block)."""
    name, hint, _ = _chunk_hint(chunk)
    longest = longest_free(_map_bits(chunk))
    page_bits = alloc.PCPU_BITMAP_BLOCK_SIZE
    if longest - hint > page_bits:
        yield name, f"{name} {hint} is {longest - hint} bits below the longest free run {longest}, more than a page"


@state_invariant(
    "chunk-md-contig-hint-maximal",
    patch="v5.4 mm/percpu.c (pcpu_chunk_refresh_hint, pcpu_block_update)",
    seed="""promote scan_hint to contig_hint""",
)
def chunk_md_contig_hint_maximal(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """``chunk_md``'s contig hint is a whole free run: an allocated bit (or the edge) on each side.  A later
    ``pcpu_block_update`` makes it the scan hint, which the refresh promotes and scans forward from.

    Added by the proofs: without it ``chunk-md-scan-hint-maximal`` is not inductive for free at 2x8.
    """
    md = chunk.chunk_md
    if _in_longer_run(_map_bits(chunk), md.contig_hint_start, md.contig_hint):
        yield ("chunk_md.contig_hint_start", f"chunk_md: contig hint [{md.contig_hint_start},"
               f" {md.contig_hint_start + md.contig_hint}) is part of a longer free run")


@state_invariant(
    "chunk-md-contig-hint-longest",
    patch="v5.4 mm/percpu.c (pcpu_chunk_refresh_hint, pcpu_block_update_hint_free)",
    seed="""chunk_md->contig_hint may be off by up to a page, but it will never be more
    than the available space.""",
)
def chunk_md_contig_hint_longest(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """No free run is longer than ``chunk_md.contig_hint``: with ``chunk-hint-never-above-available``, the hint is
    exact.  Stronger than the comment, which allows a page; a lemma of the proofs: at 2x8 the chunk-hint claims
    were not inductive without it (a run across the block edge, longer than the contig hint).  ``mainline-fixed``
    keeps it (fix 7: ``chunk_md`` only sees whole runs; fix 9: a full scan when an allocation breaks it);
    ``mainline`` breaks it with findings 12 and 17 (19 shows only once 12 is fixed).
    """
    hint, longest = chunk.chunk_md.contig_hint, longest_free(_map_bits(chunk))
    if longest > hint:
        yield "chunk_md.contig_hint", f"chunk_md.contig_hint {hint}, but the longest free run is {longest}"


@state_invariant(
    "chunk-hint-covers-every-block",
    patch="v4.14 and v5.4 mm/percpu.c (pcpu_block_update_hint_free)",
    seed="""If the contig hint is contained in one block, it will be accurate.""",
)
def chunk_hint_covers_every_block(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """No free run inside one block is longer than ``chunk_md.contig_hint``: the hint may miss a run that crosses
    a block edge (the comment allows a page), but never one a block holds whole.

    Added by the proofs: without it ``chunk-hint-accurate-in-one-block`` is not inductive for alloc at 2x8 (an
    allocation that splits a run across two blocks leaves the longest run inside one block).
    """
    hint = chunk.chunk_md.contig_hint
    for where, _, bits in _blocks(alloc, chunk):
        longest = longest_free(bits)
        if longest > hint:
            yield "chunk_md.contig_hint", f"chunk_md.contig_hint {hint}, but {where} holds a free run of {longest}"


@state_invariant(
    "chunk-hint-accurate-in-one-block",
    patch="v4.14 and v5.4 mm/percpu.c (pcpu_block_update_hint_free)",
    seed="""If the contig hint is contained in one block, it will be accurate.""",
)
def chunk_hint_accurate_in_one_block(alloc: PcpuAllocator, chunk: ReleaseChunk) -> Iterator[tuple[str, str]]:
    """Read as: when the longest free run lies inside one block, the chunk hint has its length.

    (The free path's else branch, which this sentence explains, raises the
    chunk hint to a free area within one block.)
    """
    name, hint, _ = _chunk_hint(chunk)
    B = alloc.PCPU_BITMAP_BLOCK_SIZE
    runs = free_runs(_map_bits(chunk))
    longest = max((r.length for r in runs), default=0)
    inside = [r for r in runs if r.length == longest and r.start // B == (r.start + r.length - 1) // B]
    if longest and inside and hint != longest:
        r = inside[0]
        yield name, f"{name} {hint}, but the longest free run [{r.start}, {r.start + r.length}) lies in one block"


# -- empty pages (5.2: counted by the hint updaters) --------------------------------------


@state_invariant(
    "contig-bits-whole-when-chunk-free",
    patch="v4.14 mm/percpu.c (pcpu_alloc_chunk, pcpu_block_update_hint_free)",
    seed="""chunk->contig_bits = region_bits;""",
)
def contig_bits_whole_when_chunk_free(alloc: PcpuAllocator, chunk: PcpuChunk414) -> Iterator[tuple[str, str]]:
    """A wholly free 4.14 chunk has the hint ``pcpu_alloc_chunk`` gives it: ``contig_bits`` the whole map, from 0.

    Added by the proofs: at 1x8 ``nr-empty-pop-pages-matches-bitmap`` was not inductive for alloc without it
    (a free chunk whose hint starts past bit 0, so that an allocation at 0 does not refresh the chunk and its
    empty page stays counted).  The free that empties a chunk refreshes it (it frees a page).
    """
    bits = _map_bits(chunk)
    if not any(bits) and (chunk.contig_bits, chunk.contig_bits_start) != (len(bits), 0):
        yield ("contig_bits", f"the chunk is wholly free, but contig_bits is {chunk.contig_bits} from"
               f" {chunk.contig_bits_start}, not {len(bits)} from 0")


@state_invariant(
    "contig-bits-free-area-whole-in-its-block",
    patch="v4.14 mm/percpu.c (pcpu_block_update_hint_alloc)",
    seed="""* Update the chunk contig hint if the allocation breaks it.""",
)
def contig_bits_free_area_whole_in_its_block(alloc: PcpuAllocator, chunk: PcpuChunk414) -> Iterator[tuple[str, str]]:
    """A 4.14 ``contig_bits`` area that is free and inside one block has an allocated bit, or the block's edge,
    on each side: no allocation that starts in the same block can reach into it without starting inside it,
    which is when the alloc path refreshes the chunk.

    Added by the proofs: at 1x8 ``chunk-hint-never-above-available`` was not inductive for alloc without it
    (an area inside a longer free run, which an allocation starting before it overlaps).  Only within a block,
    and only for a free area: 4.14 lets ``contig_bits`` miss a run across a block edge ("may be off by up to a
    page") and its free path places the area on allocated bits (``chunk-hint-never-above-available``).
    """
    bits, B = _map_bits(chunk), alloc.PCPU_BITMAP_BLOCK_SIZE
    hint, start = chunk.contig_bits, chunk.contig_bits_start
    end = start + hint
    if not (hint and _region_free(bits, start, hint) and start // B == (end - 1) // B):
        return
    if (start % B and not bits[start - 1]) or (end % B and not bits[end]):
        yield ("contig_bits_start", f"contig_bits area [{start}, {end}) is free and has a free bit beside it"
               " in its block")


@state_invariant(
    "nr-empty-pop-pages-by-block",
    patch="v5.4 mm/percpu.c (pcpu_update_empty_pages)",
    seed="""This is used to keep track of the empty pages now based on the premise a
    md_block covers a page.  The hint update functions recognize if a block is made
    full or broken to calculate deltas for keeping track of free pages.""",
)
def nr_empty_pop_pages_by_block(alloc: PcpuAllocator, chunk: PcpuChunk54) -> Iterator[tuple[str, str]]:
    """The populated pages with no allocated bit, as 2017's ``nr-empty-pop-pages-matches-bitmap`` counts them."""
    yield from nr_empty_pop_pages_matches.check(alloc, chunk)


# -- the Z3 side (5.2's layout, SymChunk54; 4.14's, SymChunk414, where the invariant applies to it) -------

SymReleaseChunk = SymChunk414 | SymChunk54


def _sym_block_seg(chunk: SymReleaseChunk, i: int) -> z3.BitVecRef:
    B = chunk.geometry.block_bits
    return z3.Extract((i + 1) * B - 1, i * B, chunk.alloc_map)


def _sym_blocks(chunk: SymReleaseChunk) -> list[tuple[Any, z3.BitVecRef, int]]:
    """Each ``md_blocks[i]`` with its bits and their number, as ``_blocks``."""
    B = chunk.geometry.block_bits
    return [(b, _sym_block_seg(chunk, i), B) for i, b in enumerate(chunk.md_blocks)]


def _sym_chunk_hint(chunk: SymReleaseChunk) -> tuple[Int, Int]:
    """The chunk's contig hint and its start, as ``_chunk_hint``: 4.14's ``contig_bits``, 5.2's ``chunk_md``."""
    if isinstance(chunk, SymChunk414):
        return chunk.contig_bits, chunk.contig_bits_start
    return chunk.chunk_md.contig_hint, chunk.chunk_md.contig_hint_start


def _sym_chunk_first_free(chunk: SymReleaseChunk) -> Int:
    """No free bit below this: 4.14's ``first_bit``, 5.2's ``chunk_md.first_free``."""
    return chunk.first_bit if isinstance(chunk, SymChunk414) else chunk.chunk_md.first_free


def _sym_pcpu_block_mds(chunk: SymChunk54) -> list[tuple[SymBlockMd, z3.BitVecRef, int]]:
    """Every ``struct pcpu_block_md`` with the bits it covers and their number, as ``_pcpu_block_mds``."""
    return [*_sym_blocks(chunk), (chunk.chunk_md, chunk.alloc_map, chunk.nr_bits)]


def _sym_region_free(bits: z3.BitVecRef, n: int, start: Int, length: Int) -> z3.BoolRef:
    """``_region_free``: ``[start, start + length)`` lies inside the ``n`` bits and holds no allocated bit."""
    return z3.And(start >= 0, start + length <= n, bits & range_mask(start, start + length, n) == 0)


def _sym_longest_is(free: z3.BitVecRef, n: int, length: Int) -> z3.BoolRef:
    return z3.And(has_run(free, n, length), z3.Not(has_run(free, n, length + 1)))


def _sym_first_zero(bits: z3.BitVecRef, n: int) -> Int:
    return z3.If(~bits == 0, I(n), lowest_set(~bits, n))


@scan_hint_below_contig_hint.symbolic
def _scan_hint_below_contig_hint(chunk: SymChunk54) -> z3.BoolRef:
    return z3.And([md.scan_hint <= md.contig_hint for md, _, _ in _sym_pcpu_block_mds(chunk)])


@scan_hint_before_contig_hint.symbolic
def _scan_hint_before_contig_hint(chunk: SymChunk54) -> z3.BoolRef:
    return z3.And([z3.Or(md.scan_hint == 0, (md.scan_hint_start > md.contig_hint_start) == (md.scan_hint == md.contig_hint))
                   for md, _, _ in _sym_pcpu_block_mds(chunk)])


def _sym_clear_of_contig_hint(mds: list[tuple[SymBlockMd, z3.BitVecRef, int]]) -> z3.BoolRef:
    return z3.And([z3.Or(md.scan_hint == 0, md.scan_hint_start + md.scan_hint <= md.contig_hint_start,
                         md.contig_hint_start + md.contig_hint <= md.scan_hint_start)
                   for md, _, _ in mds])


@scan_hint_clear_of_contig_hint.symbolic
def _scan_hint_clear_of_contig_hint(chunk: SymChunk54) -> z3.BoolRef:
    return _sym_clear_of_contig_hint(_sym_pcpu_block_mds(chunk)[:-1])


@chunk_md_scan_hint_clear_of_contig_hint.symbolic
def _chunk_md_scan_hint_clear_of_contig_hint(chunk: SymChunk54) -> z3.BoolRef:
    return _sym_clear_of_contig_hint(_sym_pcpu_block_mds(chunk)[-1:])


def _sym_not_in_longer_run(bits: z3.BitVecRef, n: int, start: Int, length: Int) -> z3.BoolRef:
    """``_in_longer_run`` is false: an empty or out-of-range area, or one with no free bit beside it."""
    end = start + length
    inside = z3.And(start >= 0, start <= end, end <= n)
    left_free = z3.And(start > 0, z3.Not(bit(bits, start - 1, n)))
    right_free = z3.And(end < n, z3.Not(bit(bits, end, n)))
    return z3.Or(length == 0, z3.Not(inside), z3.Not(z3.Or(left_free, right_free)))


def _sym_maximal(mds: list[tuple[SymBlockMd, z3.BitVecRef, int]]) -> z3.BoolRef:
    return z3.And([_sym_not_in_longer_run(bits, n, md.scan_hint_start, md.scan_hint) for md, bits, n in mds])


@scan_hint_maximal.symbolic
def _scan_hint_maximal(chunk: SymChunk54) -> z3.BoolRef:
    return _sym_maximal(_sym_pcpu_block_mds(chunk)[:-1])


@chunk_md_scan_hint_maximal.symbolic
def _chunk_md_scan_hint_maximal(chunk: SymChunk54) -> z3.BoolRef:
    return _sym_maximal(_sym_pcpu_block_mds(chunk)[-1:])


def _sym_largest_before(mds: list[tuple[SymBlockMd, z3.BitVecRef, int]]) -> z3.BoolRef:
    return z3.And([z3.Or(md.scan_hint == 0,
                         z3.Not(has_run(~bits & low_mask(smax(md.scan_hint_start, md.contig_hint_start), n), n,
                                        md.scan_hint + 1)))
                   for md, bits, n in mds])


@scan_hint_largest_before.symbolic
def _scan_hint_largest_before(chunk: SymChunk54) -> z3.BoolRef:
    return _sym_largest_before(_sym_pcpu_block_mds(chunk)[:-1])


@scan_hint_region_free.symbolic
def _scan_hint_region_free(chunk: SymChunk54) -> z3.BoolRef:
    return z3.And([_sym_scan_hint_free(md, bits, n) for md, bits, n in _sym_pcpu_block_mds(chunk)])


def _sym_scan_hint_free(md: SymBlockMd, bits: z3.BitVecRef, n: int) -> z3.BoolRef:
    return z3.Or(md.scan_hint == 0, _sym_region_free(bits, n, md.scan_hint_start, md.scan_hint))


@block_contig_hint_exact.symbolic
def _block_contig_hint_exact(chunk: SymReleaseChunk) -> z3.BoolRef:
    B = chunk.geometry.block_bits
    return z3.And([z3.And(_sym_longest_is(~seg, B, b.contig_hint), _sym_region_free(seg, B, b.contig_hint_start, b.contig_hint))
                   for b, seg, _ in _sym_blocks(chunk)])


@block_left_right_free_exact.symbolic
def _block_left_right_free_exact(chunk: SymReleaseChunk) -> z3.BoolRef:
    B = chunk.geometry.block_bits
    return z3.And([z3.And(b.left_free == z3.If(seg == 0, I(B), lowest_set(seg, B)),
                          b.right_free == z3.If(seg == 0, I(B), I(B - 1) - highest_set(seg, B)))
                   for b, seg, _ in _sym_blocks(chunk)])


@first_free_not_above_first_free_bit.symbolic
def _first_free_not_above_first_free_bit(chunk: SymReleaseChunk) -> z3.BoolRef:
    return z3.And([*(md.first_free <= _sym_first_zero(bits, n) for md, bits, n in _sym_blocks(chunk)),
                   _sym_chunk_first_free(chunk) <= _sym_first_zero(chunk.alloc_map, chunk.nr_bits)])


@block_nr_bits.symbolic
def _block_nr_bits(chunk: SymChunk54) -> z3.BoolRef:
    return z3.And([md.nr_bits == n for md, _, n in _sym_pcpu_block_mds(chunk)])


@hints_inside_their_bits.symbolic
def _hints_inside_their_bits(chunk: SymChunk54) -> z3.BoolRef:
    conds = []
    for md, _, n in _sym_pcpu_block_mds(chunk):
        conds += [md.contig_hint_start >= 0, md.contig_hint >= 0, md.contig_hint_start + md.contig_hint <= n,
                  z3.Or(md.scan_hint == 0, z3.And(md.scan_hint_start >= 0, md.scan_hint >= 0,
                                                  md.scan_hint_start + md.scan_hint <= n)),
                  md.first_free >= 0, md.first_free <= n]
    return z3.And(conds)


@block_hints_on_free_bits.symbolic
def _block_hints_on_free_bits(chunk: SymChunk54) -> z3.BoolRef:
    B = chunk.geometry.block_bits
    return z3.And([z3.And(_sym_region_free(seg, B, b.contig_hint_start, b.contig_hint),
                          _sym_scan_hint_free(b, seg, B),
                          b.right_free >= 0, _sym_region_free(seg, B, I(B) - b.right_free, b.right_free))
                   for b, seg, _ in _sym_blocks(chunk)])


@chunk_hint_never_above_available.symbolic
def _chunk_hint_never_above_available(chunk: SymReleaseChunk) -> z3.BoolRef:
    (hint, start), n = _sym_chunk_hint(chunk), chunk.nr_bits
    return z3.And(has_run(~chunk.alloc_map, n, hint),
                  z3.Or(hint == 0, _sym_region_free(chunk.alloc_map, n, start, hint)))


@chunk_hint_off_by_at_most_a_page.symbolic
def _chunk_hint_off_by_at_most_a_page(chunk: SymReleaseChunk) -> z3.BoolRef:
    B = chunk.geometry.block_bits
    return z3.Not(has_run(~chunk.alloc_map, chunk.nr_bits, _sym_chunk_hint(chunk)[0] + B + 1))


@chunk_md_contig_hint_maximal.symbolic
def _chunk_md_contig_hint_maximal(chunk: SymChunk54) -> z3.BoolRef:
    md = chunk.chunk_md
    return _sym_not_in_longer_run(chunk.alloc_map, chunk.nr_bits, md.contig_hint_start, md.contig_hint)


@chunk_md_contig_hint_longest.symbolic
def _chunk_md_contig_hint_longest(chunk: SymChunk54) -> z3.BoolRef:
    return z3.Not(has_run(~chunk.alloc_map, chunk.nr_bits, chunk.chunk_md.contig_hint + 1))


@chunk_hint_covers_every_block.symbolic
def _chunk_hint_covers_every_block(chunk: SymChunk54) -> z3.BoolRef:
    B = chunk.geometry.block_bits
    return z3.And([z3.Not(has_run(~seg, B, chunk.chunk_md.contig_hint + 1)) for _, seg, _ in _sym_pcpu_block_mds(chunk)[:-1]])


@chunk_hint_accurate_in_one_block.symbolic
def _chunk_hint_accurate_in_one_block(chunk: SymReleaseChunk) -> z3.BoolRef:
    """The longest free run ``L`` (binary search over run lengths), the starts of runs of ``L`` bits, and
    whether one such run ends in the block it starts in: then the chunk hint is ``L``."""
    n, B = chunk.nr_bits, chunk.geometry.block_bits
    free = ~chunk.alloc_map
    length: Int = I(0)
    step = 1 << (n.bit_length() - 1)
    while step:
        longer = has_run(free, n, length + step)
        length = z3.If(longer, length + step, length)
        step >>= 1
    starts = run_starts(free, n, length)
    in_one_block = z3.BitVecVal(0, n)
    for k in range(chunk.geometry.nr_pages):
        in_one_block = in_one_block | range_mask(I(k * B), I(k * B + B + 1) - length, n)
    return z3.Or(length == 0, starts & in_one_block == 0, _sym_chunk_hint(chunk)[0] == length)


nr_empty_pop_pages_by_block.symbolic(nr_empty_pop_pages_matches.z3)


@contig_bits_whole_when_chunk_free.symbolic
def _contig_bits_whole_when_chunk_free(chunk: SymChunk414) -> z3.BoolRef:
    return z3.Or(chunk.alloc_map != 0, z3.And(chunk.contig_bits == chunk.nr_bits, chunk.contig_bits_start == 0))


@contig_bits_free_area_whole_in_its_block.symbolic
def _contig_bits_free_area_whole_in_its_block(chunk: SymChunk414) -> z3.BoolRef:
    hint, start, n, B = chunk.contig_bits, chunk.contig_bits_start, chunk.nr_bits, chunk.geometry.block_bits
    end = start + hint
    log_B = B.bit_length() - 1
    one_block = start >> log_B == (end - 1) >> log_B
    free_left = z3.And(start & (B - 1) != 0, z3.Not(bit(chunk.alloc_map, start - 1, n)))
    free_right = z3.And(end & (B - 1) != 0, z3.Not(bit(chunk.alloc_map, end, n)))
    return z3.Or(hint == 0, z3.Not(_sym_region_free(chunk.alloc_map, n, start, hint)), z3.Not(one_block),
                 z3.Not(z3.Or(free_left, free_right)))
