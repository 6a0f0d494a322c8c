"""The Python reference implementation: builds the allocator of a trace's init and applies its operations.

It is the first implementation of the small interface every implementation
of the allocator will offer (``start``, ``apply``, ``dump``): the Z3
encoding, and later a user-space build of a kernel's own mm/percpu.c, are
held to it step by step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Protocol

from pcpuverify.model.bitmap import OutOfBounds
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.first_chunk import check_layout, pcpu_setup_first_chunk
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, Depopulate, FirstChunkInit, Free, Init, Op, Populate
from pcpuverify.model.state import dump_state
from pcpuverify.model.variants import variant_class


class OpError(ValueError):
    """An operation the allocator's callers never issue in this state (e.g. freeing what is not allocated)."""


@dataclass(frozen=True)
class StepResult:
    """What one operation returned: the bit offset of an alloc (None when it failed) and stray accesses."""

    op: Op
    bit_off: int | None
    accesses: tuple[OutOfBounds, ...]


class Implementation(Protocol):
    """An allocator that can replay a trace: start from an init, apply ops, dump the state."""

    def apply(self, op: Op) -> StepResult: ...

    def dump(self) -> dict[str, object]: ...


class Reference:
    """The Python port of the allocator (a variant of ``PcpuAllocator``) and its chunks by role."""

    def __init__(self, variant: str, geometry: Geometry, init: Init) -> None:
        cls = variant_class(variant)
        self.variant = variant
        self.geometry = geometry
        self.init = init
        self.steps = 0
        self.corrupted_at: int | None = None  # the step that first wrote out of bounds
        if isinstance(init, FirstChunkInit):
            if not cls.ports_first_chunk:
                raise OpError(f"variant {variant}: first_chunk init is not ported for it yet; use a chunk init")
            layout = check_layout(init, geometry.page_size)
            self.alloc = cls(geometry.block_bits, layout.unit_pages)
            self.chunks = pcpu_setup_first_chunk(self.alloc, layout)
        else:
            self.alloc = cls(geometry.block_bits, geometry.nr_pages)
            chunk = self.alloc.pcpu_alloc_chunk()
            self.alloc.pcpu_chunk_relocate(chunk, -1)
            self.chunks = {"dynamic": chunk}
            for page in geometry.populated:
                self.alloc.pcpu_chunk_populated(chunk, page, page + 1)

    # -- the Implementation interface ------------------------------------------

    def chunk(self, reserved: bool) -> PcpuChunk:
        if reserved:
            if "reserved" not in self.chunks:
                raise OpError("a reserved operation needs a first_chunk init with reserved_size > 0")
            return self.chunks["reserved"]
        return self.chunks["dynamic"]

    def apply(self, op: Op) -> StepResult:
        """Run ``op`` and return what it returned, with any bitmap access outside its bitmap."""
        chunk = self.chunk(op.reserved)
        mark = len(chunk.log)
        bit_off: int | None = None
        if isinstance(op, Alloc):
            off = self.alloc.pcpu_alloc(chunk, op.bits, op.align, op.pop_only)
            if off >= 0:
                bit_off = off // PCPU_MIN_ALLOC_SIZE
                chunk.allocations[bit_off] = op.bits
        elif isinstance(op, Free):
            self._check_free(chunk, op)
            self.alloc.pcpu_free_area(chunk, op.bit_off * PCPU_MIN_ALLOC_SIZE)
            del chunk.allocations[op.bit_off]
        elif isinstance(op, Populate):
            self._check_pages(chunk, op.page_start, op.page_end)
            for rs, re in self.alloc.pcpu_unpop_regions(chunk, op.page_start, op.page_end):
                self.alloc.pcpu_chunk_populated(chunk, rs, re)
        else:
            self._check_pages(chunk, op.page_start, op.page_end)
            self._check_depopulate(chunk, op)
            for rs, re in self.alloc.pcpu_pop_regions(chunk, op.page_start, op.page_end):
                self.alloc.pcpu_chunk_depopulated(chunk, rs, re)
        accesses = tuple(chunk.log[mark:])
        if self.corrupted_at is None and any(a.write for a in accesses):
            self.corrupted_at = self.steps
        self.steps += 1
        return StepResult(op, bit_off, accesses)

    def dump(self) -> dict[str, object]:
        return dump_state(self.alloc, self.chunks)

    def copy(self) -> Reference:
        """An independent copy (chunks, their bitmaps and the allocator's globals)."""
        new = copy.copy(self)
        new.alloc = copy.copy(self.alloc)
        new.chunks = {name: chunk.copy() for name, chunk in self.chunks.items()}
        renamed = {id(self.chunks[name]): new.chunks[name] for name in self.chunks}
        for attr in ("pcpu_reserved_chunk", "pcpu_first_chunk"):
            old = getattr(self.alloc, attr)
            if old is not None:
                setattr(new.alloc, attr, renamed[id(old)])
        return new

    def key(self) -> tuple[object, ...]:
        """Everything the next steps can depend on, hashable: for deduplicating explored states."""
        return (
            self.alloc.pcpu_nr_empty_pop_pages,
            self.corrupted_at is not None,
            *(
                c.key() if not isinstance(c, PcpuChunk) else  # a release's chunk (4.14 on) keys itself
                (
                    c.alloc_map.value,
                    c.bound_map.value,
                    c.populated.value,
                    tuple((b.contig_hint, b.contig_hint_start, b.left_free, b.right_free, b.first_free)
                          for b in c.md_blocks),
                    c.free_bits,
                    c.contig_hint,
                    c.contig_hint_start,
                    c.first_free_block,
                    c.nr_populated,
                    c.nr_empty_pop_pages,
                    c.slot,
                    tuple(sorted(c.allocations.items())),
                )
                for c in self.chunks.values()
            ),
        )

    # -- what a caller of the allocator guarantees -----------------------------

    def _check_free(self, chunk: PcpuChunk, op: Free) -> None:
        if op.bit_off == 0 and chunk.has_reserved:
            raise OpError("free bit_off=0: that is the static region hidden by pcpu_setup_first_chunk")
        if op.bit_off not in chunk.allocations:
            live = sorted(b for b in chunk.allocations if not (b == 0 and chunk.has_reserved))
            raise OpError(f"free bit_off={op.bit_off}: no live allocation starts there (live: {live})")

    def _check_pages(self, chunk: PcpuChunk, page_start: int, page_end: int) -> None:
        if chunk.immutable:
            raise OpError(f"the {chunk.name} first chunk is immutable: no [de]population allowed")
        if not 0 <= page_start < page_end <= chunk.nr_pages:
            raise OpError(
                f"pages [{page_start}, {page_end}) must lie in [0, {chunk.nr_pages}) and not be empty"
            )

    def _check_depopulate(self, chunk: PcpuChunk, op: Depopulate) -> None:
        B = self.alloc.PCPU_BITMAP_BLOCK_SIZE
        span = chunk.alloc_map.value >> (op.page_start * B)
        if span & ((1 << ((op.page_end - op.page_start) * B)) - 1):
            raise OpError(
                f"depopulate pages [{op.page_start}, {op.page_end}): they hold allocated bits;"
                " the allocator only depopulates free pages"
            )


def new_reference(variant: str, geometry: Geometry, init: Init | None = None) -> Reference:
    return Reference(variant, geometry, init or ChunkInit())

