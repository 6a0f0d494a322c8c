"""The named variants of the allocator; each overrides only the functions its patch changes."""

from __future__ import annotations

from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.percpu import ALIGN, PcpuAllocator


class V1(PcpuAllocator):
    """Variant ``v1``: PATCH 09 + PATCH 10 as posted ("add optimizations on allocation path")."""

    variant = "v1"

    def pcpu_find_block_fit(self, chunk: PcpuChunk, bit_size: int, align: int, pop_only: bool) -> int:
        """PATCH 10: fail fast when the request can't fit the chunk's contig hint at its alignment."""
        # check chunk->contig_hint to see if alloc can fit - see note above
        block_off = ALIGN(chunk.contig_hint_start, align) - chunk.contig_hint_start
        if block_off + bit_size > chunk.contig_hint:
            return -1
        return super().pcpu_find_block_fit(chunk, bit_size, align, pop_only)

    def pcpu_alloc_area_search(self, chunk: PcpuChunk, bit_size: int, align_mask: int, start: int) -> int:
        """PATCH 10: the search window is bounded to ``start + bit_size + PCPU_BITMAP_BLOCK_SIZE``.

        "should in reality never be hit as the contig_hint should be a valid
        placement" -- the window is not clipped to the bitmap's size.
        """
        end = start + bit_size + self.PCPU_BITMAP_BLOCK_SIZE
        bit_off = chunk.alloc_map.bitmap_find_next_zero_area(end, start, bit_size, align_mask)
        if bit_off >= end:
            return -1
        return bit_off


VARIANTS: dict[str, type[PcpuAllocator]] = {
    "v1": V1,
    "v1-patch09": PcpuAllocator,
}


class UnknownVariant(ValueError):
    """A variant name that is not in VARIANTS."""


def variant_class(name: str) -> type[PcpuAllocator]:
    try:
        return VARIANTS[name]
    except KeyError:
        raise UnknownVariant(
            f"unknown variant {name!r}; choose one of: {', '.join(sorted(VARIANTS))}"
        ) from None
