"""The allocator's data: ``struct pcpu_bitmap_md`` and ``struct pcpu_chunk`` (PATCH 09, mm/percpu-internal.h)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from pcpuverify.model.bitmap import Bitmap, OutOfBounds


@dataclass
class PcpuBitmapMd:
    """One metadata block; all fields in bits, block relative."""

    contig_hint: int = 0  # contig hint for block
    contig_hint_start: int = 0  # block relative starting position of the contig hint
    left_free: int = 0  # size of free space along the left side of the block
    right_free: int = 0  # size of free space along the right side of the block
    first_free: int = 0  # block position of first free


BlockT = TypeVar("BlockT")


class MdBlocks(Generic[BlockT]):
    """``chunk->md_blocks``: indexing outside the array is recorded, not raised.

    C computes ``chunk->md_blocks + i`` without a check; an index past the
    end reads and writes whatever follows.  Such an access gets a scratch
    block (so the port can go on, as the kernel would) and a log entry.
    """

    __slots__ = ("blocks", "log", "scratch")

    def __init__(
        self, blocks: list[BlockT], log: list[OutOfBounds], scratch: Callable[[], BlockT] = PcpuBitmapMd  # type: ignore[assignment]
    ) -> None:
        self.blocks = blocks
        self.log = log
        self.scratch = scratch  # makes the scratch block: a release's blocks have other fields

    def __getitem__(self, index: int) -> BlockT:
        if 0 <= index < len(self.blocks):
            return self.blocks[index]
        # a block pointer past the array is written through: count it as a write
        self.log.append(OutOfBounds("md_blocks", "md_blocks[]", index, index + 1, len(self.blocks), write=True))
        return self.scratch()

    def __len__(self) -> int:
        return len(self.blocks)

    def __iter__(self) -> Iterator[BlockT]:
        return iter(self.blocks)


@dataclass
class PcpuChunk:
    """``struct pcpu_chunk`` with the fields the bitmap allocator reads and writes.

    ``allocations`` is not kernel state: it is the ghost record of what
    ``pcpu_alloc`` handed out (bit offset -> bits), which the invariants need
    to say what a free should release.
    """

    name: str
    nr_pages: int
    alloc_map: Bitmap
    bound_map: Bitmap
    populated: Bitmap
    md_blocks: MdBlocks[PcpuBitmapMd]
    log: list[OutOfBounds]
    free_bits: int = 0
    contig_hint: int = 0
    contig_hint_start: int = 0
    first_free_block: int = 0
    nr_populated: int = 0
    nr_empty_pop_pages: int = 0
    has_reserved: bool = False
    immutable: bool = False
    slot: int = -1  # the pcpu_slot[] list the chunk sits on; -1 before linking
    allocations: dict[int, int] = field(default_factory=dict)

    @classmethod
    def zalloc(cls, name: str, nr_pages: int, nr_bits: int, nr_blocks: int) -> PcpuChunk:
        """Zeroed chunk memory, as ``pcpu_mem_zalloc``/``memblock_virt_alloc`` give it."""
        log: list[OutOfBounds] = []
        return cls(
            name=name,
            nr_pages=nr_pages,
            alloc_map=Bitmap("alloc_map", nr_bits, log),
            bound_map=Bitmap("bound_map", nr_bits + 1, log),
            populated=Bitmap("populated", nr_pages, log),
            md_blocks=MdBlocks([PcpuBitmapMd() for _ in range(nr_blocks)], log),
            log=log,
        )

    def copy(self) -> PcpuChunk:
        log = list(self.log)
        return replace(
            self,
            alloc_map=self.alloc_map.copy(log),
            bound_map=self.bound_map.copy(log),
            populated=self.populated.copy(log),
            md_blocks=MdBlocks([replace(b) for b in self.md_blocks], log),
            log=log,
            allocations=dict(self.allocations),
        )
