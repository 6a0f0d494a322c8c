"""The first chunk of a C build (4.14 on): the layouts its setup accepts, the pages it needs, what it hides.

From 4.14 on, ``pcpu_setup_first_chunk`` gives each region beside the
static one (the reserved region if there is one, then the dynamic region)
to ``pcpu_alloc_first_chunk(tmp_addr, map_size)``, which rounds the region
out to whole pages and hides, as allocated, what of those pages lies
outside it: ``start_offset`` bytes before it (the end of the previous
region) and ``end_offset`` bytes after it.  The harness keeps each hidden
run as a ghost allocation that no caller frees, computed here from the
layout and not read from the C, so that ``alloc-map-is-allocations`` and
``bound-map-marks-allocations`` judge what the C hid.

The checks are the setup code's own ``PCPU_SETUP_BUG_ON`` list that bears
on the sizes (4.14 to 7.1, unchanged): ``!ai->static_size``,
``ai->dyn_size < PERCPU_DYNAMIC_EARLY_SIZE`` (scaled to one page, as
``model/first_chunk.py`` scales it) and ``!IS_ALIGNED(ai->reserved_size,
PCPU_MIN_ALLOC_SIZE)``; then the static region's end is aligned to
``PCPU_MIN_ALLOC_SIZE``, taken from the dynamic region.  Unlike the 2017 posting (PATCH 05), nothing asks
``static_size + reserved_size`` to end on a page: the end of the reserved
region is hidden instead.  The 2017 posting hides its static region in
``pcpu_setup_first_chunk`` itself, which the harness does not build, so a
first chunk is refused for the ``seed`` layout (the model's ``v1`` has it).
"""

from __future__ import annotations

from dataclasses import dataclass

from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE
from pcpuverify.model.ops import FirstChunkInit


@dataclass(frozen=True)
class CFirstChunk:
    """What ``pcpu_setup_first_chunk`` derives from a layout: the unit's pages and each chunk's hidden runs."""

    unit_pages: int
    hidden: dict[str, dict[int, int]]  # chunk name -> {bit offset: bits} hidden by pcpu_alloc_first_chunk


def _hidden(tmp_addr: int, map_size: int, page_size: int) -> dict[int, int]:
    """``pcpu_alloc_first_chunk(tmp_addr, map_size)``'s hidden runs (base_addr is page aligned)."""
    start_offset = tmp_addr % page_size
    region_size = -(-(start_offset + map_size) // page_size) * page_size
    end_offset = region_size - start_offset - map_size
    runs = {}
    if start_offset // PCPU_MIN_ALLOC_SIZE:
        runs[0] = start_offset // PCPU_MIN_ALLOC_SIZE
    if end_offset // PCPU_MIN_ALLOC_SIZE:
        runs[(start_offset + map_size) // PCPU_MIN_ALLOC_SIZE] = end_offset // PCPU_MIN_ALLOC_SIZE
    return runs


def c_first_chunk(init: FirstChunkInit, page_size: int) -> CFirstChunk:
    """The first chunk of ``init`` at ``page_size`` bytes a page; LayoutError for a layout the setup refuses."""
    static_size, reserved_size, dyn_size = init.static_size, init.reserved_size, init.dyn_size
    if min(static_size, reserved_size, dyn_size) < 0:
        raise LayoutError("static_size, reserved_size and dyn_size must not be negative")
    if not static_size:
        raise LayoutError("PCPU_SETUP_BUG_ON(!ai->static_size): static_size must be positive")
    if reserved_size % PCPU_MIN_ALLOC_SIZE:
        raise LayoutError("PCPU_SETUP_BUG_ON(!IS_ALIGNED(ai->reserved_size, PCPU_MIN_ALLOC_SIZE)):"
                          f" reserved_size {reserved_size} is not a multiple of {PCPU_MIN_ALLOC_SIZE}")
    if dyn_size < page_size:
        raise LayoutError(f"PCPU_SETUP_BUG_ON(ai->dyn_size < PERCPU_DYNAMIC_EARLY_SIZE): dyn_size must be at least"
                          f" one page ({page_size} bytes) in a scaled geometry (got {dyn_size})")
    # "The end of the static region needs to be aligned with the minimum allocation size as this offsets the
    # reserved and dynamic region. [...] the dynamic region can be shrunk to compensate" (4.14 on)
    aligned_static = -(-static_size // PCPU_MIN_ALLOC_SIZE) * PCPU_MIN_ALLOC_SIZE
    dyn_size -= aligned_static - static_size
    static_size = aligned_static
    hidden = {"dynamic": _hidden(static_size + reserved_size, dyn_size, page_size)}
    if reserved_size:
        hidden["reserved"] = _hidden(static_size, reserved_size, page_size)
    size_sum = static_size + reserved_size + dyn_size  # the same sum: dyn_size gave what static_size took
    return CFirstChunk(unit_pages=-(-size_sum // page_size), hidden=hidden)
