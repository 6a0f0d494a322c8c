"""The first chunk: PATCH 05's ``pcpu_align_reserved_region`` and the metadata part of ``pcpu_setup_first_chunk``.

PATCH 05 makes ``static_size + reserved_size`` end page aligned so that the
reserved chunk can start at the page holding the end of the static region
and hide the overlap (``pcpu_reserved_offset`` bytes) as allocated bits
(``begin_fill_bits``, PATCH 09).  Sizes here are bytes, as in the C code.
"""

from __future__ import annotations

from dataclasses import dataclass

from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE
from pcpuverify.model.ops import FirstChunkInit
from pcpuverify.model.percpu import PcpuAllocator


class LayoutError(ValueError):
    """A layout ``pcpu_setup_first_chunk`` would refuse (one of its ``PCPU_SETUP_BUG_ON``)."""


def PFN_ALIGN(x: int, page_size: int) -> int:
    return (x + page_size - 1) & ~(page_size - 1)


def pcpu_align_reserved_region(static_size: int, reserved_size: int, page_size: int) -> int:
    """PATCH 05 (include/linux/percpu.h): the reserved size that makes static + reserved end page aligned."""
    if not reserved_size:
        return 0
    return PFN_ALIGN(static_size + reserved_size, page_size) - static_size


@dataclass(frozen=True)
class FirstChunkLayout:
    """What ``pcpu_setup_first_chunk`` derives from an allocation layout (bytes unless named)."""

    static_size: int
    reserved_size: int
    dyn_size: int
    page_size: int
    pcpu_reserved_offset: int
    begin_fill_bits: int
    map_size_bytes: int
    first_chunk_pages: int
    dyn_chunk_pages: int
    unit_pages: int


def check_layout(init: FirstChunkInit, page_size: int) -> FirstChunkLayout:
    """Apply the layout conditions of ``pcpu_setup_first_chunk`` and derive its numbers.

    The base address is page aligned (``PCPU_SETUP_BUG_ON(offset_in_page(base_addr))``),
    so ``pcpu_reserved_offset`` is the static size's offset in its page.  Only
    the setup code's own checks are applied -- nothing rounds or rejects what
    it would accept (a ``static_size`` that is not a multiple of
    PCPU_MIN_ALLOC_SIZE, a dynamic region not ending on a page).  The
    absolute minimums scale with the page: ``PERCPU_DYNAMIC_EARLY_SIZE`` (3
    pages of 4 KiB) becomes one page and ``PCPU_MIN_UNIT_SIZE`` is dropped.
    """
    static_size, reserved_size, dyn_size = init.static_size, init.reserved_size, init.dyn_size
    if min(static_size, reserved_size, dyn_size) < 0:
        raise LayoutError("static_size, reserved_size and dyn_size must not be negative")
    size_sum = static_size + reserved_size + dyn_size
    if not static_size:
        raise LayoutError("PCPU_SETUP_BUG_ON(!ai->static_size): static_size must be positive")
    if reserved_size and (static_size + reserved_size) % page_size:
        raise LayoutError(
            "PCPU_SETUP_BUG_ON(reserved_size && !PAGE_ALIGNED(static_size + reserved_size)):"
            f" {static_size} + {reserved_size} is not a multiple of PAGE_SIZE {page_size};"
            " size the reserved region with pcpu_align_reserved_region()"
        )
    if dyn_size < page_size:
        raise LayoutError(
            f"PCPU_SETUP_BUG_ON(ai->dyn_size < PERCPU_DYNAMIC_EARLY_SIZE): dyn_size must be at least"
            f" one page ({page_size} bytes) in a scaled geometry (got {dyn_size})"
        )

    # tmp_addr = base_addr + static_size; aligned_addr = tmp_addr & PAGE_MASK
    pcpu_reserved_offset = static_size % page_size
    begin_fill_bits = pcpu_reserved_offset // PCPU_MIN_ALLOC_SIZE
    map_size_bytes = (reserved_size or dyn_size) + pcpu_reserved_offset
    return FirstChunkLayout(
        static_size=static_size,
        reserved_size=reserved_size,
        dyn_size=dyn_size,
        page_size=page_size,
        pcpu_reserved_offset=pcpu_reserved_offset,
        begin_fill_bits=begin_fill_bits,
        map_size_bytes=map_size_bytes,
        first_chunk_pages=map_size_bytes // page_size,  # map_size_bytes >> PAGE_SHIFT
        dyn_chunk_pages=dyn_size // page_size,  # dyn_size >> PAGE_SHIFT
        unit_pages=-(-size_sum // page_size),  # unit_size = PFN_ALIGN(size_sum)
    )


def pcpu_setup_first_chunk(alloc: PcpuAllocator, layout: FirstChunkLayout) -> dict[str, PcpuChunk]:
    """PATCH 09's metadata part of ``pcpu_setup_first_chunk``: the chunks it links in, by role.

    The chunk adjacent to the static region serves the reserved region when
    there is one (and becomes ``pcpu_reserved_chunk``), else the dynamic
    region; a reserved layout gets a second chunk for the dynamic region.
    """
    alloc.pcpu_reserved_offset = layout.pcpu_reserved_offset
    begin_fill_bits = alloc.pcpu_begin_fill_bits(layout.pcpu_reserved_offset)
    name = "reserved" if layout.reserved_size else "dynamic"
    chunk = alloc.pcpu_alloc_first_chunk(name, layout.first_chunk_pages)
    chunk.immutable = True

    # set metadata
    chunk.contig_hint = alloc.pcpu_nr_pages_to_bits(chunk) - begin_fill_bits
    chunk.free_bits = alloc.pcpu_nr_pages_to_bits(chunk) - begin_fill_bits

    # If the beginning of the reserved region overlaps the end of the static
    # region, hide that portion in the metadata.
    if begin_fill_bits:
        chunk.has_reserved = True
        chunk.alloc_map.bitmap_fill(begin_fill_bits)
        chunk.bound_map.set_bit(0)
        chunk.bound_map.set_bit(begin_fill_bits)
        chunk.allocations[0] = begin_fill_bits  # the ghost: hidden, never freed

        if alloc.pcpu_block_update_hint_alloc(chunk, 0, begin_fill_bits):
            alloc.pcpu_chunk_update_hint(chunk)

    chunks = {name: chunk}
    # init dynamic chunk if necessary
    if layout.reserved_size:
        alloc.pcpu_reserved_chunk = chunk

        chunk = alloc.pcpu_alloc_first_chunk("dynamic", layout.dyn_chunk_pages)
        # set metadata
        chunk.contig_hint = alloc.pcpu_nr_pages_to_bits(chunk)
        chunk.free_bits = alloc.pcpu_nr_pages_to_bits(chunk)
        chunks["dynamic"] = chunk

    # link the first chunk in
    alloc.pcpu_first_chunk = chunk
    alloc.pcpu_nr_empty_pop_pages = chunk.nr_empty_pop_pages
    alloc.pcpu_chunk_relocate(chunk, -1)
    return chunks
