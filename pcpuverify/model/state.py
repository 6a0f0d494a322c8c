"""A state dump with the kernel's field names: what ``replay --json`` prints and what implementations are compared on.

The chunk's fields are read once, from ``PcpuChunk``'s dataclass (``DUMP_FIELDS`` and the lists by kind
below).  Every converter of a chunk reads them: the dump here, the symbolic chunk (symbolic/state.py), a
counterexample to induction in the dump's format (proofs/obligations.py), conformance's flattening
(proofs/conformance.py) and a C build's dump read back (kernel/convert.py); a field added to the dataclass
reaches them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from functools import cache
from typing import Any, Protocol

from pcpuverify.model.bitmap import Bitmap
from pcpuverify.model.chunk import MdBlocks, PcpuBitmapMd, PcpuChunk
from pcpuverify.model.percpu import PcpuAllocator

# Every field of struct pcpu_chunk the model keeps, in the dataclass's order: the dump's keys, in the
# dump's order.  Not ``name`` (the dump's key for the chunk) nor ``log`` (the out-of-bounds accesses a
# step reports: not state).
_STATE = tuple(f for f in fields(PcpuChunk) if f.name not in ("name", "log"))
DUMP_FIELDS = tuple(f.name for f in _STATE)
BITMAP_FIELDS = tuple(f.name for f in _STATE if f.type == "Bitmap")  # dumped as strings, bit 0 first
# the counts, in bits, pages or list numbers; nr_pages, which the geometry fixes, apart
INT_FIELDS = tuple(f.name for f in _STATE if f.type == "int" and f.name != "nr_pages")
FLAG_FIELDS = tuple(f.name for f in _STATE if f.type == "bool")
BLOCK_FIELDS = tuple(f.name for f in fields(PcpuBitmapMd))  # each of md_blocks, in its order


def bitmap_string(bitmap: Bitmap) -> str:
    """Bit 0 first, one character per bit: the order a bitmap is drawn in (``bitmap.bits()`` as digits)."""
    n = bitmap.nbits
    return format(bitmap.value & ((1 << n) - 1), f"0{n}b")[::-1] if n else ""


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def flat_dict(md: object) -> dict[str, object]:
    """``dataclasses.asdict`` of a dataclass of plain values (a block's hints): without its recursion and
    deep copies, which were most of the time a fidelity run spent dumping the model's states."""
    return {name: getattr(md, name) for name in _names(type(md))}


def _dumped(value: object) -> object:
    if isinstance(value, Bitmap):
        return bitmap_string(value)
    if isinstance(value, MdBlocks):
        return [flat_dict(block) for block in value]
    if isinstance(value, dict):  # allocations, the ghost record: bit offset -> bits, by offset
        return {str(off): bits for off, bits in sorted(value.items())}
    return value


def dump_chunk(chunk: PcpuChunk) -> dict[str, object]:
    return {name: _dumped(getattr(chunk, name)) for name in DUMP_FIELDS}


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
