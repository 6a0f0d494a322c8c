"""Write docs/gallery.md: one entry per finding, from minimised model traces.

The July 2017 posting's findings on v1 come from tests/traces/gallery/; the released allocators'
(linux-4.14, mainline) from tests/release_traces/, tests/kernel_traces/model/ and tests/proof_traces/ (what the
release proofs found), each also shown on the
C of its release in docs/kernels.md.

    python docs/make_gallery.py

Each entry: the sentence the finding contradicts, the trace drawn step
by step (the output of ``pcpu-verify replay``), the mechanism in kernel
terms, and the fix (the ``fixed`` variant's for v1; a patch of docs/patches/
and ``mainline-fixed``'s for the releases).
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pcpuverify.invariants.check import invariant
from pcpuverify.model.trace import load_trace, write_atomically

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "tests" / "traces" / "gallery"
RELEASE_TRACES = ROOT / "tests" / "release_traces"


@dataclass(frozen=True)
class Finding:
    title: str
    traces: tuple[str, ...]  # file names in ``folder``
    mechanism: str
    fix: str
    folder: Path = TRACES


FREE_RUN_FIX = (
    "`fixed` also refreshes the chunk when the freed run reaches into a neighbouring block's free bits: "
    "`(!start && s_index && (s_block - 1)->right_free) || (end == PCPU_BITMAP_BLOCK_SIZE && e_index + 1 < "
    "nr_blocks && (e_block + 1)->left_free)`.  A run that stays inside its block is then exactly the block "
    "hint the code already compares, and one that leaves it is rescanned."
)

FINDINGS = (
    Finding(
        "The chunk's contig_hint can promise more than is free",
        ("v1__chunk-contig-hint-not-above-free-run.json", "v1__chunk-contig-hint-region-free.json",
         "v1-patch09__chunk-contig-hint-not-above-free-run.json"),
        """`pcpu_block_update_hint_alloc()` asks for a chunk refresh only when the new area *starts*
inside the chunk's hint: `bit_off >= chunk->contig_hint_start && bit_off < chunk->contig_hint_start +
chunk->contig_hint`.  After a free inside one block the chunk hint is only raised to that block's hint
(`pcpu_block_update_hint_free()`, the `else if` at its end), so the hint can sit to the right of a
longer free run that starts in an earlier block.  `pcpu_find_block_fit()` then returns the start of that
earlier run (`cur_free += block->left_free`), the area runs *into* the hint region, and the hint is kept:
`contig_hint` now counts bits that are allocated, and `chunk-contig-hint-region-free` breaks with it.
PATCH 09 alone has the same bug; PATCH 10 only adds the fail-fast on top of it.""",
        "`fixed` refreshes the chunk when the area overlaps the hint region (`bit_off < hint_end && "
        "hint_start < bit_off + bit_size`), the test mainline adopted in 2019 as `pcpu_region_overlap()`.",
    ),
    Finding(
        "A chunk hint below a block is not kept accurate",
        ("v1__chunk-contig-hint-exact-below-a-block.json", "v1-patch09__chunk-contig-hint-exact-below-a-block.json"),
        """On the free path the chunk hint is only compared with the start block's own `contig_hint`
(`else if (s_block->contig_hint > chunk->contig_hint)`).  A freed area that joins a free run at the end of
the previous block makes a longer run across the block boundary, which no block hint describes; as long
as the freed area neither empties its block nor spans blocks, no chunk scan happens, and the hint stays
below the real longest run even though it is smaller than a block.""",
        FREE_RUN_FIX,
    ),
    Finding(
        "The chunk hint falls short by more than a block",
        ("v1__chunk-contig-hint-within-a-block.json", "v1-patch09__chunk-contig-hint-within-a-block.json"),
        """The same path as the previous finding, twice.  A free that empties a whole block makes
`pcpu_block_update_hint_free()` ask for a chunk scan, and the hint is exact.  Each later free inside one
block grows the freed area only to that block's edge (`find_last_bit()` and `find_next_bit()` on
`pcpu_index_alloc_map(chunk, s_index)`), and the chunk hint is at most raised to the block's own
`contig_hint`.  Free the rest of the block on the left of the free block and the start of the block on its
right, and the run across the three blocks grows by nearly two blocks while `chunk->contig_hint` stays
where the scan left it.  The cover letter allows "smaller than what it could allocate by up to a block";
the shortfall reaches `2 * (PCPU_BITMAP_BLOCK_SIZE - 1)`, so `pcpu_find_block_fit()`'s chunk-hint test
(and PATCH 10's fail-fast) turns away requests the chunk could place.  It takes three blocks; on one or
two blocks the invariant is proved.""",
        FREE_RUN_FIX,
    ),
    Finding(
        "nr_empty_pop_pages counts pages that hold allocations",
        ("v1__nr-empty-pop-pages-matches-bitmap.json", "v1-patch09__nr-empty-pop-pages-matches-bitmap.json"),
        """Two paths.  (a) A non-atomic `pcpu_alloc()` populates the area's pages with
`pcpu_chunk_populated()`, which PATCH 09 makes add every such page to `chunk->nr_empty_pop_pages` (and to
`pcpu_nr_empty_pop_pages`) although the new allocation occupies it: the 4.12 code subtracted `occ_pages`
afterwards, PATCH 09 deletes that.  (b) `nr_empty_pop_pages` is recounted only inside
`pcpu_chunk_update_hint()`, which an allocation triggers only when it starts inside the chunk hint; an
allocation into an empty page elsewhere leaves the page counted as empty.  The count drives the balance
work that keeps pages ready for atomic allocations.""",
        "`fixed` gives `pcpu_chunk_populated()` a `for_alloc` argument that skips the empty-page counters "
        "(as v4.14 does) and refreshes the chunk when an allocation lands in a block whose hint spans it.",
    ),
    Finding(
        "Atomic allocations land on unpopulated pages",
        ("v1__pop-only-alloc-on-populated-pages.json", "v1-patch09__pop-only-alloc-on-populated-pages.json",
         "v1-patch09__allocations-on-populated-pages.json"),
        """`pcpu_is_populated()` computes `off = pcpu_block_off_to_off(index, block_off)`, a *bit* offset,
and passes it to `PFN_DOWN()`, which expects *bytes*; `e_off` adds `bit_size * PCPU_MIN_ALLOC_SIZE` bytes to
it.  Block `i` is page `i`, but the code checks page `i / 4`, so an atomic (`pop_only`) request is placed on
a page that has no backing memory.  `*next_index = re * PAGE_SIZE / PCPU_BITMAP_BLOCK_SIZE` is `4 * re`
instead of `re`, so the search also skips blocks that would fit.""",
        "`fixed` computes page numbers from byte offsets, `PFN_DOWN(off * PCPU_MIN_ALLOC_SIZE)` and "
        "`PFN_UP((off + bit_size) * PCPU_MIN_ALLOC_SIZE)`, and the next block as `re * PAGE_SIZE / "
        "(PCPU_BITMAP_BLOCK_SIZE * PCPU_MIN_ALLOC_SIZE)`, as v4.14 does.",
    ),
    Finding(
        "The bitmap search reads past alloc_map",
        ("v1__bitmap-access-in-bounds.json",),
        """PATCH 10 bounds the search in `pcpu_alloc_area()` to `end = start + bit_size +
PCPU_BITMAP_BLOCK_SIZE` and passes `end` to `bitmap_find_next_zero_area()` as the bitmap's size, without
clipping it to `pcpu_nr_pages_to_bits(chunk)`.  Any allocation near the end of the chunk makes
`find_next_zero_bit()` read past `alloc_map` (mainline fixed this in 2019, 8c43004af016 "percpu: do not
search past bitmap when allocating an area").""",
        "`fixed` clips the window: `end = min(start + bit_size + PCPU_BITMAP_BLOCK_SIZE, "
        "pcpu_nr_pages_to_bits(chunk))`.",
    ),
    Finding(
        "An atomic allocation is placed past the end of the chunk",
        ("v1__alloc-returns-aligned-free-offset.json",),
        """The two previous findings together.  When the overshooting `next_index` (4x the page) passes the
last block, `pcpu_find_block_fit()` leaves its loop with `i != pcpu_nr_pages_to_blocks(chunk)` and
returns `s_index * PCPU_BITMAP_BLOCK_SIZE`, an offset past the bitmap.  PATCH 09 alone then fails the
search harmlessly; with PATCH 10's unclipped window the search reads zeros past `alloc_map`, "finds"
room there, and `bitmap_set()` writes past the bitmap: memory corruption from an atomic allocation.""",
        "Fixed by the two fixes above (page arithmetic in bytes, clipped window).",
    ),
    Finding(
        "The first chunk can hand out a static byte",
        ("v1__static-overlap-hidden.json",),
        """(Geometry: 16-byte pages, a 1-byte static region.)  `pcpu_setup_first_chunk()` hides the part of the static region that shares the first chunk's first
page with `begin_fill_bits = pcpu_reserved_offset / PCPU_MIN_ALLOC_SIZE`, rounding down.  A static size
that is not a multiple of 4 bytes leaves its last bytes in a bit that is free for allocation.  Nothing in
v1 rejects such a size (v2 aligns the static size up to PCPU_MIN_ALLOC_SIZE).  Real static sizes come
from the linker and are usually multiples of 8, so this is a latent edge, not an observed failure.""",
        "`fixed` rounds up: `begin_fill_bits = DIV_ROUND_UP(pcpu_reserved_offset, PCPU_MIN_ALLOC_SIZE)`.",
    ),
)


RELEASE_FINDINGS = (
    Finding(
        "linux-4.14: the chunk hint runs past the free run",
        ("linux-4.14__chunk-hint-never-above-available.json", "linux-4.14__chunk-hint-accurate-in-one-block.json"),
        """`pcpu_block_update_hint_alloc()` still refreshes the chunk only when the area *starts* inside
`contig_bits` (v4.14.5 mm/percpu.c:759), and the free path's `pcpu_chunk_update(chunk,
pcpu_block_off_to_off(s_index, start), s_block->contig_hint)` (:865) pairs the freed area's start with
the length of the block's hint, which may lie elsewhere.  In 4.14.5 and 4.19.72; fixed by the 5.2 series
("percpu: introduce helper to determine if two regions overlap", "percpu: update free path with correct
new free region").  The proofs found a third consequence (the `free` row of
`chunk-hint-accurate-in-one-block`, beyond depth 4; breadth-first search on the model then gave the shortest,
9 operations at 1x8, `tests/proof_traces/linux-4.14__1x8__chunk-hint-accurate-in-one-block.json`): a free
moves `contig_bits_start` to a better-aligned start whose area is not free, the next allocations start
before it and after it, so the one that fills the chunk refreshes nothing and a full chunk keeps
`contig_bits` 3.  The free path only raises `contig_bits` (`pcpu_chunk_update()`), so after the next free
it is 3 while the longest free run is 1 bit.  On v4.14.5's C too; the alloc-overlap patch removes it.""",
        "`docs/patches/v4.14-alloc-overlap.patch` (refresh on overlap) and `v4.14-free-region.patch` "
        "(`end - start`).",
        RELEASE_TRACES,
    ),
    Finding(
        "linux-4.14: nr_empty_pop_pages counts a page that holds bits",
        ("linux-4.14__nr-empty-pop-pages-matches-bitmap.json",),
        """Empty pages are recounted only by `pcpu_chunk_refresh_hint()` (v4.14.5 :588), which the alloc
path skips in the case above.  5.2 counts them per block (`pcpu_update_empty_pages`).""",
        "`docs/patches/v4.14-alloc-overlap.patch` removes the trace on the C.",
        RELEASE_TRACES,
    ),
    Finding(
        "linux-4.14: the search window is not clipped to the bitmap",
        ("linux-4.14__bitmap-access-in-bounds.json",),
        """`end = start + alloc_bits + PCPU_BITMAP_BLOCK_BITS` (v4.14.5 :983), PATCH 10's window, as
merged.  In C the read stays inside the last `unsigned long` unless every bit up to it is set; ASan did
not see it within our searches.  Fixed in 5.2 ("percpu: do not search past bitmap when allocating an
area").""",
        "`docs/patches/v4.14-clip-window.patch` (5.2's `min_t`).",
        RELEASE_TRACES,
    ),
    Finding(
        "5.2 to 7.1.3: a free outside block 0 never raises chunk_md",
        ("mainline__chunk-hint-accurate-in-one-block.json", "mainline__chunk-hint-off-by-at-most-a-page.json"),
        """`pcpu_block_update(&chunk->chunk_md, pcpu_block_off_to_off(s_index, start), end)` (7.1.3
:1055-1057) passes `end` block relative: for any block but the first the area is empty and the chunk
hint stays below the freed run, so allocations that fit are refused and chunks are added.  Every 5.2+
source, still in 7.1.3 and Debian 6.12 (docs/kernels.md).""",
        "`docs/patches/chunk-md-free-end.patch`: `pcpu_block_off_to_off(s_index, end)`.  Once frees reach "
        "`chunk_md`, a scan_hint that an allocation dropped (0) is taken for \"nothing before the contig "
        "hint\": `scan-hint-not-from-nothing.patch` (docs/kernels.md, finding 5).",
        RELEASE_TRACES,
    ),
    Finding(
        "5.2 to 7.1.3: right_free lost when a scan hint is promoted",
        ("mainline__block-left-right-free-exact.json",),
        """`pcpu_block_refresh_hint()` clears `right_free` (7.1.3 :791) and, after promoting the scan hint,
scans only from its end; when the scan hint was the block's right free run nothing sets `right_free`
again, and the cross-block iterators miss that run.  With finding 12 the chunk can look full on two
8-bit pages: `alloc 4; alloc 1; alloc 9; alloc 2; free 5; free 0; alloc 1; alloc 1; alloc 6; free 8`
hides block 0's run [5, 8) from `chunk_md`'s refresh after `alloc 6` and never reports the free of [8, 14),
leaving `chunk_md.contig_hint` 0 beside the 9 free bits [5, 14) (on the C too; the 2x8 proofs' witness for
`chunk-hint-off-by-at-most-a-page`/free, `tests/proof_traces/mainline__2x8__chunk-hint-off-by-at-most-a-page.json`).""",
        "`docs/patches/block-refresh-right-free.patch`: `right_free = start == PCPU_BITMAP_BLOCK_BITS ? "
        "contig_hint : 0`.",
        RELEASE_TRACES,
    ),
    Finding(
        "5.2 to 7.1.3: an equal area before the contig hint becomes the scan hint",
        ("mainline__scan-hint-before-contig-hint.json",),
        """`pcpu_block_update()`'s equal-size branch (7.1.3 :670) records a free area as large as the contig
hint but before it as the scan hint, against "scan_hint_start > contig_hint_start iff scan_hint ==
contig_hint".  No wrong allocation found to follow from it.""",
        "`docs/patches/scan-hint-equal-before.patch`: forget the scan hint for such an area.",
        RELEASE_TRACES,
    ),
    Finding(
        "5.2 to 7.1.3: a stale scan hint inside the new contig hint splits a free run",
        ("mainline__block-contig-hint-exact.json",),
        """A free area larger than the contig hint that starts *at* the scan hint keeps it: the test is
`start < block->scan_hint_start` (7.1.3 :648).  The next refresh promotes the stale hint and scans
forward from its end, so the block's `contig_hint` (and `chunk_md`'s) falls below its longest free run.
Every 5.2+ source; found on 32-bit blocks.  On 8-bit blocks it takes 8 operations (alloc 1, alloc 1, alloc 1,
alloc 4, free 0, free 2, free 3, alloc 3 align 4: the block's contig hint 1 at 2 beside the free run [2, 4)),
found by breadth-first search of the model; `tests/proof_traces/breadth-first/` holds it for each row it
settles at 1x8 and 2x8.""",
        "`docs/patches/scan-hint-inside-new-contig.patch`: `start <= block->scan_hint_start`.",
        ROOT / "tests" / "kernel_traces" / "model",
    ),
    Finding(
        "5.2 to 7.1.3: a better-aligned contig hint leaves the scan hint before or inside it",
        ("mainline__scan-hint-before-contig-hint.json", "mainline__scan-hint-clear-of-contig-hint.json"),
        """Found by the proofs (`pcpu-verify prove --variant mainline-fixed --geometry 1x8`: consecution
of `scan-hint-before-contig-hint` failed for alloc and free on `mainline-fixed` as it then was; each
counterexample to induction was then reached by breadth-first search on the model, which gave these
shortest traces at 1x8).  In `pcpu_block_update()`'s equal-size branch (7.1.3 :665-669) an area as
large as the contig hint with a better alignment takes its place; the scan hint is dropped only if
`start < block->scan_hint_start && block->contig_hint > block->scan_hint`.  When the scan hint was as
large as the contig hint (so after it) and the new start lies past it, an equal area is left *before*
the contig hint, against "scan_hint_start > contig_hint_start iff scan_hint == contig_hint" (first
trace, 6 ops: alloc 2 align 2 refreshes the block, which promotes the scan hint and meets [6, 7) with
the better alignment).  When the new area starts *at* a smaller scan hint it contains it, and the
hint meant to lie before the contig hint is inside it (second trace, 5 ops).  Every 5.2+ source (both
traces reproduce on the C of 5.4.286 and 7.1.3); mainline-fixed's fix 1 (finding 14) does not reach
this branch.""",
        "`docs/patches/scan-hint-equal-after-alignment.patch` (fix 4 of `mainline-fixed`): drop the scan hint "
        "also when `start > block->scan_hint_start && block->contig_hint == block->scan_hint`, and test "
        "`start <= block->scan_hint_start` for a smaller one, as the larger-area branch is fixed in finding 15.",
        ROOT / "tests" / "proof_traces",
    ),
    Finding(
        "4.14 to 7.1.3: the chunk hint falls short by more than a page (finding 3, never fixed)",
        ("mainline__chunk-hint-off-by-at-most-a-page.json",),
        """Finding 3 of the 2017 posting, as merged and in every release since.  Found on
`mainline-fixed` as it then was, by following the counterexample to induction of the 2x8 proofs
(`chunk-hint-off-by-at-most-a-page`, alloc) to a state on more blocks, then `pcpu-verify minimize`.
`pcpu_block_update_hint_free()` refreshes `chunk_md` with a full scan only when the freed area fills a
block or spans blocks; otherwise it updates `chunk_md` with the area clipped to its block (7.1.3 :1052).
The comment above that test allows it: "The contig_hint may be off by up to a page".  Free the block
left of a free block up to its edge, and the block right of it from its edge, and the run across the
three blocks is longer than the chunk hint by up to two pages less two bits: here [1, 10) is free (9
bits) while `chunk_md.contig_hint` stays 4, a page of 4 bits plus 1 short.  Requests the chunk could
place are turned away by `pcpu_check_block_hint(chunk_md, ...)`, and the chunk sits in a lower slot.
It takes three blocks; on one or two the bound holds.  The same 8 operations break the C of 4.14.5
(`contig_bits`), 5.4.286, Debian 6.12 and 7.1.3 (`tests/kernel_traces/`).""",
        "`docs/patches/chunk-md-free-edge.patch` (fix 7 of `mainline-fixed`), as `fixed` does for finding 3: "
        "also refresh when the freed area reaches into a neighbouring block's free bits, `(!start && s_index "
        "&& (s_block - 1)->right_free) || (end == PCPU_BITMAP_BLOCK_BITS && e_index + 1 < "
        "pcpu_chunk_nr_blocks(chunk) && (e_block + 1)->left_free)`.  `chunk_md` then only ever sees whole "
        "free runs.",
    ),
    Finding(
        "5.2 to 7.1.3: a better-aligned contig hint hides the area it replaced from the scan hint",
        ("mainline__block-contig-hint-exact-after-alignment.json",),
        """Found on `mainline-fixed` as it then was (fixes 1 to 7), by following the counterexample to
induction of the 2x8 proofs (`chunk-md-scan-hint-largest-before`, free), which had a free run between the
scan hint and the contig hint, longer than the scan hint; such a state was thought unreachable, and is
reachable once a block has room for it (16 bits).  In `pcpu_block_update()`'s equal-size branch (7.1.3
:661-669) an area as large as the contig hint with a better alignment takes its place.  When it lies *after*
the old contig hint, the old one is now an area as large before the contig hint, recorded nowhere, while a
smaller scan hint before it still stands for "the largest known contiguous area before the contig hint".
Here: `free 0` makes [0, 1) the scan hint and `free 2` [2, 4) the contig hint; `free 8` frees [8, 10), as
large and better aligned, which takes the contig hint and leaves [2, 4) behind.  `free 5` frees the 1-bit
[5, 6): "larger than or equal and farther", it becomes the scan hint, past [2, 4).  `alloc 2` starts its
search after the scan hint (`pcpu_next_hint()`), skips [2, 4), takes [8, 10) and breaks the contig hint;
`pcpu_block_refresh_hint()` promotes the 1-bit scan hint and scans forward from its end only.  The block's
`contig_hint` (and `chunk_md`'s) is 1 while [2, 4) is free, against "if the contig_hint is contained in a
block, it will be accurate": 2-bit requests skip a chunk that holds a 2-bit area, and first fit is lost
(the allocation went to [8, 10), past a free [2, 4)).  Every 5.2+ source: the same 13 operations break the C of
5.4.286, Debian 6.12 and 7.1.3, unpatched and with fixes 1 to 7 (`tests/kernel_traces/debian-6.12/
5.14__1x16__...`).  Without `free 0` the scan hint is made "from nothing" (the path fix 5 closes,
`docs/kernels.md` item 5): 12 operations break the unpatched C the same way, the first trace of that path
on the unpatched C.""",
        "`docs/patches/scan-hint-contig-moves-forward.patch` (fix 8 of `mainline-fixed`): when the contig hint "
        "moves forward to a better-aligned area, forget a smaller scan hint, `if (start > "
        "block->contig_hint_start && block->contig_hint > block->scan_hint) block->scan_hint = 0;`.  It needs "
        "fix 5 (`scan-hint-not-from-nothing.patch`), so that the forgotten hint stays unknown until a full scan; "
        "neither alone removes the trace on the C.",
        ROOT / "tests" / "kernel_traces" / "model",
    ),
    Finding(
        "5.2 to 7.1.3, unmasked by fix 1: chunk_md's scan hint is promoted past an area it never saw",
        (),
        """Found on `mainline-fixed` with fixes 1 to 8 by following the 2x8 proofs' counterexample to
induction for `chunk-md-scan-hint-largest-before`/free: a run between `chunk_md`'s scan hint and its contig
hint, longer than the scan hint, that no block reports.  No model variant shows it (`mainline` has finding
12's bug, which keeps frees outside block 0 from `chunk_md`, and `mainline-fixed` now has the fix), so the
trace is the C's: `tests/kernel_traces/unmasked/5.14__3x8__chunk-hint-accurate-in-one-block__hidden-area.json`,
15 operations at 3x8, shrunk on 7.1.3 with fixes 1 to 8; it breaks the C with fix 1 alone, not the unpatched C:

    alloc 6; alloc 1; alloc 2; alloc 2; alloc 1; alloc 1; alloc 1; alloc 2; alloc 4;
    free 14; free 9; free 6; alloc 3; free 12; alloc 2 align 2

`chunk_md` is refreshed from the blocks' metadata (`pcpu_for_each_md_free_region()`): each block's contig
hint and the runs across block edges, not every free area.  Block 1 holds [9, 11) and [14, 16), as large,
and keeps [14, 16) as its contig hint (better aligned); [9, 11), freed after it and before it, is not even its
scan hint, and no block reports it.  `alloc 3` breaks `chunk_md`'s contig hint [20, 24), and the refresh (no
scan hint, so from `first_free`) makes [6, 7) `chunk_md`'s scan hint and [14, 16) its contig hint, passing
[9, 11) unseen.  `free 12` makes
the 1-bit [12, 13) the scan hint ("larger than or equal and farther"); `alloc 2 align 2` takes [14, 16),
breaks the contig hint, and `pcpu_chunk_refresh_hint(chunk, false)` promotes [12, 13) and scans forward
from bit 13 only: `chunk_md.contig_hint` 1 while [9, 11) is free inside one block, against "if the
contig_hint is contained in a block, it will be accurate".  The comment above the call says a full scan
("The only time a full chunk scan is required is if the chunk contig hint is broken", 7.1.3 :933); the call
passes `false`.""",
        "`docs/patches/chunk-refresh-full-scan.patch` (fix 9 of `mainline-fixed`): a full scan, as the comment "
        "says, and the scan hint forgotten first, `chunk_md->scan_hint = 0; pcpu_chunk_refresh_hint(chunk, true);` "
        "(a full scan keeps the scan hint, which can then lie before the new contig hint, as large: the 2x8 proofs' "
        "next counterexample to induction).  The cost: `chunk_md`'s scan hint no longer saves that scan; "
        "`pcpu_next_hint()` still reads it, which can only move an allocation to a later fit.",
    ),
)


def replay_text(path: Path) -> str:
    relative = path.relative_to(ROOT)
    out = subprocess.run(["pcpu-verify", "replay", str(relative)], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    return out.stdout


def render() -> str:
    doc = io.StringIO()
    doc.write("# Gallery: what pcpu-verify finds in the bitmap allocator, July 2017 to 7.1.3\n\n")
    doc.write("Generated by `python docs/make_gallery.py` from the minimised traces in `tests/traces/gallery/`\n")
    doc.write("(entries 1-8, the July 2017 posting), `tests/release_traces/` and `tests/kernel_traces/model/`\n")
    doc.write("(entries 9-15, the released allocators; each also on the C in `docs/kernels.md`) and `tests/proof_traces/`\n")
    doc.write("(entry 16, found by the release proofs, also on the C), `tests/traces/gallery/` again (entry 17)\n")
    doc.write("and `tests/kernel_traces/model/` again (entry 18), both found on `mainline-fixed` by following a\n")
    doc.write("counterexample to induction, also on the C; entry 19, found the same way, shows only on the C with\n")
    doc.write("fix 1 (its trace is the C's).\n")
    doc.write("Every trace replays with `pcpu-verify replay FILE`; `tests/test_regressions.py` asserts each\n")
    doc.write("v1 violation and its absence on `fixed`, `tests/test_kernel_fixes.py` each release one's absence\n")
    doc.write("on `mainline-fixed` and on the patched C.  Bitmaps are drawn bit 0 first.\n\n")
    for number, finding in enumerate(FINDINGS + RELEASE_FINDINGS, start=1):
        doc.write(f"## {number}. {finding.title}\n\n")
        for name in finding.traces:
            path = finding.folder / name
            if not path.exists():
                continue
            trace = load_trace(path)
            inv = invariant(trace.violates or "")
            doc.write(f"**{trace.variant}**, invariant `{inv.name}` ({inv.patch}):\n\n")
            doc.write(f"> {inv.seed}\n\n")
            doc.write(f"`{path.relative_to(ROOT)}`, {len(trace.ops)} operation(s):\n\n")
            doc.write("```\n" + replay_text(path) + "```\n\n")
        doc.write("**Mechanism.** " + finding.mechanism + "\n\n")
        doc.write("**Fix.** " + finding.fix + "\n\n")
    return doc.getvalue()


if __name__ == "__main__":
    write_atomically(ROOT / "docs" / "gallery.md", render())
