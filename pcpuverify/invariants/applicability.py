"""Which chunk layouts each invariant applies to: the one table, by the chunk's class.

An invariant reads fields of one metadata layout: the 2017 posting's
``PcpuChunk`` (``contig_hint``, ``first_free_block`` ...), 4.14's
``PcpuChunk414`` (``contig_bits``, ``first_bit``) or 5.2's ``PcpuChunk54``
(``chunk_md``, ``scan_hint``; mainline's chunk derives from it).  It is
checked only on the chunks of the layouts listed here; every registered
invariant must be listed (``missing_from_table``).
"""

from __future__ import annotations

from functools import cache

from pcpuverify.invariants.base import REGISTRY, Invariant
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.linux_4_14 import PcpuChunk414
from pcpuverify.model.linux_5_4 import PcpuChunk54

POSTING = frozenset({PcpuChunk})  # v1-patch09, v1, fixed
V4_14 = frozenset({PcpuChunk414})  # linux-4.14
SCAN_HINT = frozenset({PcpuChunk54})  # linux-5.4, mainline
EVERY = POSTING | V4_14 | SCAN_HINT

APPLIES_TO: dict[str, frozenset[type]] = {
    # hints.py: the 2017 chunk's contig_hint and block hints
    "chunk-contig-hint-not-above-free-run": POSTING,
    "chunk-contig-hint-region-free": POSTING,
    "block-hints-match-scan": POSTING,  # 4.14 on: block-contig-hint-exact, block-left-right-free-exact, first-free-...
    "chunk-contig-hint-within-a-block": POSTING,
    "chunk-contig-hint-exact-below-a-block": POSTING,
    # maps.py: free_bits is free_bytes in bits from 4.14 on; first_free_block and the static region are 2017's
    "free-bits-count": EVERY,
    "alloc-map-is-allocations": EVERY,
    "bound-map-marks-allocations": EVERY,
    "no-free-bit-below-first-free-block": POSTING,
    "static-overlap-hidden": POSTING,  # the release variants refuse a first-chunk init
    # population.py
    "nr-populated-matches-populated": EVERY,
    "nr-empty-pop-pages-matches-bitmap": POSTING | V4_14,  # 5.2 on: nr-empty-pop-pages-by-block
    "allocations-on-populated-pages": EVERY,
    # steps.py: they read alloc_map, populated, free_bits and the access log
    "bitmap-access-in-bounds": EVERY,
    "alloc-returns-aligned-free-offset": EVERY,
    "free-releases-one-allocation": EVERY,
    "pop-only-alloc-on-populated-pages": EVERY,
    # release_hints.py
    "scan-hint-below-contig-hint": SCAN_HINT,
    "scan-hint-before-contig-hint": SCAN_HINT,
    "scan-hint-region-free": SCAN_HINT,
    "scan-hint-clear-of-contig-hint": SCAN_HINT,
    "scan-hint-maximal": SCAN_HINT,
    "scan-hint-largest-before": SCAN_HINT,
    "chunk-md-scan-hint-clear-of-contig-hint": SCAN_HINT,
    "chunk-md-scan-hint-maximal": SCAN_HINT,
    "block-contig-hint-exact": V4_14 | SCAN_HINT,
    "block-left-right-free-exact": V4_14 | SCAN_HINT,
    "first-free-not-above-first-free-bit": V4_14 | SCAN_HINT,
    "block-nr-bits": SCAN_HINT,
    "hints-inside-their-bits": SCAN_HINT,
    "block-hints-on-free-bits": SCAN_HINT,
    "chunk-hint-never-above-available": V4_14 | SCAN_HINT,
    "chunk-hint-off-by-at-most-a-page": V4_14 | SCAN_HINT,
    "chunk-hint-accurate-in-one-block": V4_14 | SCAN_HINT,
    "chunk-hint-covers-every-block": SCAN_HINT,
    "chunk-md-contig-hint-maximal": SCAN_HINT,
    "chunk-md-contig-hint-longest": SCAN_HINT,
    "nr-empty-pop-pages-by-block": SCAN_HINT,
    "contig-bits-whole-when-chunk-free": V4_14,
    "contig-bits-free-area-whole-in-its-block": V4_14,
}


def covers(inv: Invariant, layout: type) -> bool:
    """Whether ``inv`` applies to chunks of class ``layout`` (a subclass of a listed layout counts as it)."""
    return _covers(inv.name, layout)


@cache  # the table is fixed at import; asked millions of times (first-chunk initiation checks every layout)
def _covers(name: str, layout: type) -> bool:
    return any(issubclass(layout, listed) for listed in APPLIES_TO[name])


def applies(inv: Invariant, chunk: object) -> bool:
    """Whether ``inv`` is checked on ``chunk``."""
    return covers(inv, type(chunk))


def missing_from_table() -> list[str]:
    """Registered invariants the table does not list: each must say where it applies."""
    return [name for name in REGISTRY if name not in APPLIES_TO]
