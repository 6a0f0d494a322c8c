"""A C build's state dump as the model's ``PcpuChunk``, so that the existing invariants run on it unchanged.

Renamed fields are mapped to the model's (``model/chunk.py``, PATCH 09):

- ``seed``: none; the names are the model's.
- ``4.14``: ``free_bytes / PCPU_MIN_ALLOC_SIZE`` -> ``free_bits``,
  ``contig_bits`` -> ``contig_hint``, ``contig_bits_start`` ->
  ``contig_hint_start``, ``first_bit`` (a bit: "no free below this") ->
  ``first_free_block = first_bit / PCPU_BITMAP_BLOCK_BITS``: the model's
  invariant then checks the weaker "no free bit below first_bit's block".
- ``5.2``/``5.9``/``5.14``: ``free_bytes`` -> ``free_bits``; ``chunk_md``'s
  and the blocks' hint fields are copied by name, but only the invariants
  of INVARIANTS_BY_LAYOUT that read no hint run on them: the hint
  invariants of the scan_hint code are the model-variant port's to state.

Which invariants apply, per layout (INVARIANTS_BY_LAYOUT): every one for
the seed and 4.14, but ``bitmap-access-in-bounds`` (the model's access log;
for C, AddressSanitizer stands in for it) and ``static-overlap-hidden``
(a first chunk, which the C harness does not build).
"""

from __future__ import annotations

from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.percpu import PcpuAllocator

_WITHOUT_HINTS = (
    "free-bits-count",
    "alloc-map-is-allocations",
    "bound-map-marks-allocations",
    "nr-populated-matches-populated",
    "nr-empty-pop-pages-matches-bitmap",
    "allocations-on-populated-pages",
    "alloc-returns-aligned-free-offset",
    "free-releases-one-allocation",
    "pop-only-alloc-on-populated-pages",
)
_HINTS = (
    "chunk-contig-hint-not-above-free-run",
    "chunk-contig-hint-region-free",
    "block-hints-match-scan",
    "chunk-contig-hint-within-a-block",
    "chunk-contig-hint-exact-below-a-block",
    "no-free-bit-below-first-free-block",
)
INVARIANTS_BY_LAYOUT: dict[str, tuple[str, ...]] = {
    "seed": _HINTS + _WITHOUT_HINTS,
    "4.14": _HINTS + _WITHOUT_HINTS,
    "5.2": _WITHOUT_HINTS,
    "5.9": _WITHOUT_HINTS,
    "5.14": _WITHOUT_HINTS,
}


def _bits(text: object) -> int:
    return sum(1 << i for i, c in enumerate(str(text)) if c == "1")


def to_model(dump: dict[str, object], geometry: Geometry) -> tuple[PcpuAllocator, PcpuChunk]:
    """The allocator globals and the chunk of ``dump`` (a harness's ``dump()``) as model objects."""
    layout = str(dump["layout"])
    c: dict = dump["chunks"]["dynamic"]  # type: ignore[index]
    B = geometry.block_bits
    alloc = PcpuAllocator(B, geometry.nr_pages)
    alloc.pcpu_nr_empty_pop_pages = int(dump["pcpu_nr_empty_pop_pages"])  # type: ignore[arg-type]
    chunk = PcpuChunk.zalloc("dynamic", c["nr_pages"], geometry.nr_bits, len(c["md_blocks"]))
    chunk.alloc_map.value = _bits(c["alloc_map"])
    chunk.bound_map.value = _bits(c["bound_map"])
    chunk.populated.value = _bits(c["populated"])
    for block, fields in zip(chunk.md_blocks, c["md_blocks"]):
        for name in ("contig_hint", "contig_hint_start", "left_free", "right_free", "first_free"):
            setattr(block, name, fields[name])
    if layout == "seed":
        chunk.free_bits, chunk.contig_hint = c["free_bits"], c["contig_hint"]
        chunk.contig_hint_start, chunk.first_free_block = c["contig_hint_start"], c["first_free_block"]
        chunk.has_reserved = c["has_reserved"]
    elif layout == "4.14":
        chunk.free_bits, chunk.contig_hint = c["free_bytes"] // PCPU_MIN_ALLOC_SIZE, c["contig_bits"]
        chunk.contig_hint_start, chunk.first_free_block = c["contig_bits_start"], c["first_bit"] // B
    else:
        chunk.free_bits = c["free_bytes"] // PCPU_MIN_ALLOC_SIZE
        chunk.contig_hint, chunk.contig_hint_start = c["chunk_md"]["contig_hint"], c["chunk_md"]["contig_hint_start"]
        chunk.first_free_block = c["chunk_md"]["first_free"] // B
    chunk.nr_populated, chunk.nr_empty_pop_pages = c["nr_populated"], c["nr_empty_pop_pages"]
    chunk.immutable, chunk.slot = c["immutable"], c["slot"]
    chunk.allocations = {int(off): bits for off, bits in c["allocations"].items()}
    return alloc, chunk
