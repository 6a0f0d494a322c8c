"""A state dump with the kernel's field names: what ``replay --json`` prints and what implementations are compared on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Protocol

from pcpuverify.model.bitmap import Bitmap
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.percpu import PcpuAllocator


def bitmap_string(bitmap: Bitmap) -> str:
    """Bit 0 first, one character per bit: the order a bitmap is drawn in."""
    return "".join(str(b) for b in bitmap.bits())


def dump_chunk(chunk: PcpuChunk) -> dict[str, object]:
    return {
        "nr_pages": chunk.nr_pages,
        "alloc_map": bitmap_string(chunk.alloc_map),
        "bound_map": bitmap_string(chunk.bound_map),
        "populated": bitmap_string(chunk.populated),
        "md_blocks": [asdict(block) for block in chunk.md_blocks],
        "free_bits": chunk.free_bits,
        "contig_hint": chunk.contig_hint,
        "contig_hint_start": chunk.contig_hint_start,
        "first_free_block": chunk.first_free_block,
        "nr_populated": chunk.nr_populated,
        "nr_empty_pop_pages": chunk.nr_empty_pop_pages,
        "has_reserved": chunk.has_reserved,
        "immutable": chunk.immutable,
        "slot": chunk.slot,
        "allocations": {str(off): bits for off, bits in sorted(chunk.allocations.items())},
    }


class DumpsItself(Protocol):
    """A release's chunk (4.14 on): it renames its fields, so it dumps itself."""

    def dump(self) -> dict[str, object]: ...


def dump_state(alloc: PcpuAllocator, chunks: Mapping[str, PcpuChunk | DumpsItself]) -> dict[str, object]:
    return {
        "variant": alloc.variant,
        "pcpu_nr_empty_pop_pages": alloc.pcpu_nr_empty_pop_pages,
        "chunks": {name: dump_chunk(chunk) if isinstance(chunk, PcpuChunk) else chunk.dump()
                   for name, chunk in chunks.items()},
    }


def dynamic_chunk(dump: Mapping[str, object]) -> dict[str, Any]:
    """The dump of the dynamic chunk inside a ``dump_state`` dump (or a C build's, which has the same shape)."""
    chunks = dump["chunks"]
    assert isinstance(chunks, dict)
    chunk = chunks["dynamic"]
    assert isinstance(chunk, dict)
    return chunk
