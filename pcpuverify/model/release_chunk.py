"""What the chunks of the released allocators (4.14 on) share: the maps, ``free_bytes``, the model's ghost fields.

Each release's ``struct pcpu_chunk`` (``linux_4_14.PcpuChunk414``,
``linux_5_4.PcpuChunk54``) derives from ``ReleaseChunk`` and adds its hint
fields, under the release's names, and its own ``dump``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import cache
from typing import Any, ClassVar

from pcpuverify.model.bitmap import Bitmap, OutOfBounds
from pcpuverify.model.chunk import MdBlocks
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE
from pcpuverify.model.state import bitmap_string, flat_dict


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def flat_fields(block: Any) -> tuple[int, ...]:
    """A block's fields (plain ints) as a tuple: ``dataclasses.astuple`` without its deep copy of each value, which
    made ``key`` half of a breadth-first search's time."""
    return tuple(getattr(block, name) for name in _field_names(type(block)))


def _clone(block: Any) -> Any:
    """A shallow copy of a block (plain int fields): ``dataclasses.replace`` without its per-field checks, a
    tenth of a breadth-first search's time."""
    new = object.__new__(type(block))
    new.__dict__.update(block.__dict__)
    return new


@dataclass
class ReleaseChunk:
    """The fields every release since 4.14 keeps, and the model's ``slot`` and ``allocations``.

    ``slot`` is the ``pcpu_slot[]`` list the chunk sits on (-1 before
    linking); ``allocations`` is the ghost record of what ``pcpu_alloc``
    handed out (bit offset -> bits), as in the 2017 chunk.
    """

    block_type: ClassVar[type] = object  # the release's struct pcpu_block_md
    # no chunk->has_reserved since 4.14; a chunk made by pcpu_alloc_chunk never hides a static region
    has_reserved: ClassVar[bool] = False

    name: str
    nr_pages: int
    alloc_map: Bitmap
    bound_map: Bitmap
    populated: Bitmap
    md_blocks: MdBlocks[Any]
    log: list[OutOfBounds]
    free_bytes: int = 0  # free bytes in the chunk
    immutable: bool = False  # no [de]population allowed
    nr_populated: int = 0  # # of populated pages
    nr_empty_pop_pages: int = 0  # # of empty populated pages
    slot: int = -1
    allocations: dict[int, int] = field(default_factory=dict)

    @property
    def free_bits(self) -> int:
        """``free_bytes`` in bits: not a kernel field, the quantity the 2017 invariants and step snapshots read."""
        return self.free_bytes // PCPU_MIN_ALLOC_SIZE

    @classmethod
    def zalloc(cls, name: str, nr_pages: int, nr_bits: int, nr_blocks: int) -> Any:
        """Zeroed chunk memory, as ``pcpu_mem_zalloc`` gives it."""
        log: list[OutOfBounds] = []
        return cls(
            name=name,
            nr_pages=nr_pages,
            alloc_map=Bitmap("alloc_map", nr_bits, log),
            bound_map=Bitmap("bound_map", nr_bits + 1, log),
            populated=Bitmap("populated", nr_pages, log),
            md_blocks=MdBlocks([cls.block_type() for _ in range(nr_blocks)], log, cls.block_type),
            log=log,
        )

    def copy(self) -> Any:
        """An independent copy: the maps, the blocks and every block-typed field (``chunk_md``) are new."""
        log = list(self.log)
        blocks = {name: _clone(getattr(self, name)) for name in _field_names(type(self))
                  if isinstance(getattr(self, name), self.block_type)}
        return replace(
            self,
            alloc_map=self.alloc_map.copy(log),
            bound_map=self.bound_map.copy(log),
            populated=self.populated.copy(log),
            md_blocks=MdBlocks([_clone(b) for b in self.md_blocks], log, self.block_type),
            log=log,
            allocations=dict(self.allocations),
            **blocks,
        )

    def key(self) -> tuple[object, ...]:
        """Every field as a hashable value (maps as integers, blocks as tuples): for deduplicating states."""
        out: list[object] = []
        for name in _field_names(type(self)):
            if name in ("name", "log"):
                continue
            value = getattr(self, name)
            if isinstance(value, Bitmap):
                out.append(value.value)
            elif isinstance(value, MdBlocks):
                out.append(tuple(flat_fields(b) for b in value))
            elif isinstance(value, self.block_type):
                out.append(flat_fields(value))
            elif isinstance(value, dict):
                out.append(tuple(sorted(value.items())))
            else:
                out.append(value)
        return tuple(out)

    def dump_with(self, hints: dict[str, object]) -> dict[str, object]:
        """The state dump with the release's names: the shared fields and the release's ``hints``."""
        return {
            "nr_pages": self.nr_pages,
            "alloc_map": bitmap_string(self.alloc_map),
            "bound_map": bitmap_string(self.bound_map),
            "populated": bitmap_string(self.populated),
            "md_blocks": [flat_dict(block) for block in self.md_blocks],
            "free_bytes": self.free_bytes,
            **hints,
            "nr_populated": self.nr_populated,
            "nr_empty_pop_pages": self.nr_empty_pop_pages,
            "immutable": self.immutable,
            "slot": self.slot,
            "allocations": {str(off): bits for off, bits in sorted(self.allocations.items())},
        }
