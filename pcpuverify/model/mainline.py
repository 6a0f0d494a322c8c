"""mm/percpu.c of Linux 7.1.3, the newest vendored source: ``linux-5.4`` plus what changed in the allocator core.

Compared function by function with 5.4, the hint and search code
(``pcpu_block_update``, ``pcpu_block_update_scan``, both hint updaters,
``pcpu_chunk_refresh_hint``, ``pcpu_block_refresh_hint``, the fit
iterators, ``pcpu_find_block_fit``, ``pcpu_find_zero_area``,
``pcpu_alloc_area``, ``pcpu_is_populated``, ``pcpu_chunk_[de]populated``,
``pcpu_init_md_block[s]``) is the same up to iterator macros
(``for_each_clear_bitrange_from`` for ``pcpu_for_each_unpop_region``, the
same regions) and memcg/alloc-tag lines (``obj_exts``).  What differs,
and is overridden here:

- the slots: ``pcpu_free_slot`` (above a new ``pcpu_sidelined_slot``) is the
  slot of a wholly free chunk, where 5.4 used ``pcpu_nr_slots - 1`` ("percpu:
  use pcpu_free_slot instead of pcpu_nr_slots - 1"; the sidelined and
  to-depopulate slots are "percpu: implement partial chunk depopulation",
  5.14), so a free chunk's ``slot`` is one higher than in 5.4;
- ``chunk->isolated``, read by ``pcpu_chunk_relocate`` and
  ``pcpu_update_empty_pages`` ("percpu: implement partial chunk
  depopulation");
- ``pcpu_free_area`` refuses a free whose start is not allocated and
  returns the bytes freed (7.1.3's "check invalid free").

Gap, stated: the model's ``Free`` is ``pcpu_free_area``, as for every
variant; ``free_percpu``'s isolation of a chunk (``pcpu_should_reclaim_chunk``,
in percpu-vm.c) and the balance work's reclaim are not modelled.  With one
dynamic chunk ``pcpu_nr_empty_pop_pages`` equals the chunk's count, so
percpu-vm.c's test ``pcpu_nr_empty_pop_pages > PCPU_EMPTY_POP_PAGES_HIGH +
chunk->nr_empty_pop_pages`` never holds and the chunk is never isolated:
``isolated`` stays false.
"""

from __future__ import annotations

from dataclasses import dataclass

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE
from pcpuverify.model.linux_5_4 import Linux54, PcpuChunk54


@dataclass
class PcpuChunkMainline(PcpuChunk54):
    """7.1.3 ``struct pcpu_chunk``: 5.4's with ``isolated`` ("isolated from active chunk slots")."""

    isolated: bool = False

    def dump(self) -> dict[str, object]:
        return {**super().dump(), "isolated": self.isolated}


class Mainline(Linux54):
    """Variant ``mainline``: mm/percpu.c of Linux 7.1.3 (see the module docstring for what differs from 5.4)."""

    variant = "mainline"
    chunk_type = PcpuChunkMainline

    def __init__(self, block_bits: int, unit_pages: int) -> None:
        super().__init__(block_bits, unit_pages)
        # pcpu_setup_first_chunk, 7.1.3: the slot lists above the size slots
        self.pcpu_sidelined_slot = self._pcpu_size_to_slot(self.pcpu_unit_size) + 1
        self.pcpu_free_slot = self.pcpu_sidelined_slot + 1
        self.pcpu_to_depopulate_slot = self.pcpu_free_slot + 1
        self.pcpu_nr_slots = self.pcpu_to_depopulate_slot + 1

    def pcpu_size_to_slot(self, size: int) -> int:
        """7.1.3: a wholly free chunk's slot is ``pcpu_free_slot``."""
        if size == self.pcpu_unit_size:
            return self.pcpu_free_slot
        return self._pcpu_size_to_slot(size)

    def pcpu_chunk_relocate(self, chunk: PcpuChunkMainline, oslot: int) -> None:  # type: ignore[override]
        nslot = self.pcpu_chunk_slot(chunk)

        # leave isolated chunks in-place
        if chunk.isolated:
            return

        if oslot != nslot:
            self._pcpu_chunk_move(chunk, nslot, oslot < nslot)

    def pcpu_update_empty_pages(self, chunk: PcpuChunkMainline, nr: int) -> None:  # type: ignore[override]
        chunk.nr_empty_pop_pages += nr
        if chunk is not self.pcpu_reserved_chunk and not chunk.isolated:
            self.pcpu_nr_empty_pop_pages += nr

    def pcpu_free_area(self, chunk: PcpuChunkMainline, off: int) -> int:  # type: ignore[override]
        """7.1.3 ``pcpu_free_area``: as 5.4, but an invalid free is refused (0) and the bytes freed returned."""
        chunk_md = chunk.chunk_md

        oslot = self.pcpu_chunk_slot(chunk)

        bit_off = off // PCPU_MIN_ALLOC_SIZE

        # check invalid free
        if not chunk.alloc_map.test_bit(bit_off) or not chunk.bound_map.test_bit(bit_off):
            return 0

        # find end index
        end = chunk.bound_map.find_next_bit(self.pcpu_chunk_map_bits(chunk), bit_off + 1)
        bits = end - bit_off
        chunk.alloc_map.bitmap_clear(bit_off, bits)

        freed = bits * PCPU_MIN_ALLOC_SIZE

        # update metadata
        chunk.free_bytes += freed

        # update first free bit
        chunk_md.first_free = min(chunk_md.first_free, bit_off)

        self.pcpu_block_update_hint_free(chunk, bit_off, bits)

        self.pcpu_chunk_relocate(chunk, oslot)

        return freed
