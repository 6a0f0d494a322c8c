"""A C build's state dump as a model chunk, so that the model's invariants run on the C's states unchanged.

Each release layout (``source.LAYOUT_SIGNS``) converts to the model chunk
of the variant that ports it, with the allocator object its invariants read
(``PCPU_BITMAP_BLOCK_SIZE``, ``pcpu_nr_empty_pop_pages``):

| layout | releases | chunk (model/) | allocator |
|---|---|---|---|
| ``seed`` | the July 2017 posting | ``chunk.PcpuChunk`` | ``PcpuAllocator`` |
| ``4.14`` | 4.14-5.1 | ``linux_4_14.PcpuChunk414`` | ``Linux414`` |
| ``5.2``, ``5.9`` | 5.2-5.13 | ``linux_5_4.PcpuChunk54`` | ``Linux54`` |
| ``5.14`` | 5.14 on | ``mainline.PcpuChunkMainline`` | ``Mainline`` |

For the release layouts the dump has the model chunk's own keys, key for
key (tests/test_release_fidelity.py compares them whole), so every field is
copied by name and nothing is renamed: the 4.14 and 5.2 hint invariants
(``invariants/release_hints.py``) judge the C's own ``contig_bits``,
``first_bit``, ``chunk_md`` and ``scan_hint``.  The seed's names are the
2017 model's.

Which invariants run on which layout is not a second table: it is
``invariants/applicability.py``'s ``APPLIES_TO`` for the layout's chunk
class, less what the C cannot be held to by the model's means --
``bitmap-access-in-bounds`` reads the model's access log, which a C state
does not have (AddressSanitizer stands in for it), and
``static-overlap-hidden`` needs a first chunk, which the harness does not
build.  The derived table is ``counterexamples/kernel_search.py``'s
``INVARIANTS_BY_LAYOUT``: this module sits below the invariants' layer and
may not import it (tests/test_layers.py).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pcpuverify.model.bitmap import Bitmap
from pcpuverify.model.chunk import MdBlocks, PcpuChunk
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.linux_4_14 import Linux414, PcpuChunk414
from pcpuverify.model.linux_5_4 import Linux54, PcpuChunk54
from pcpuverify.model.mainline import Mainline, PcpuChunkMainline
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.model.release_chunk import ReleaseChunk
from pcpuverify.model.state import FLAG_FIELDS, INT_FIELDS, dynamic_chunk

# layout -> (the model chunk its dump converts to, the allocator of the variant that ports it)
MODEL_OF_LAYOUT: dict[str, tuple[type, type[PcpuAllocator]]] = {
    "seed": (PcpuChunk, PcpuAllocator),
    "4.14": (PcpuChunk414, Linux414),
    "5.2": (PcpuChunk54, Linux54),
    "5.9": (PcpuChunk54, Linux54),
    "5.14": (PcpuChunkMainline, Mainline),
}

# invariants the C cannot be held to by the model's means, whatever the layout (see the module docstring)
NOT_ON_C = frozenset({"bitmap-access-in-bounds", "static-overlap-hidden"})


def _bits(text: object) -> int:
    return sum(1 << i for i, c in enumerate(str(text)) if c == "1")


def _release_chunk(chunk_type: type[ReleaseChunk], c: dict[str, Any], geometry: Geometry) -> ReleaseChunk:
    """A release chunk with every dumped field copied by name (the dump is the chunk's ``dump()``)."""
    chunk = chunk_type.zalloc("dynamic", c["nr_pages"], geometry.nr_bits, len(c["md_blocks"]))
    block_type = chunk_type.block_type
    for f in fields(chunk):
        value = getattr(chunk, f.name)
        if f.name in ("name", "log") or isinstance(value, (Bitmap, MdBlocks)):
            continue
        if f.name == "allocations":
            chunk.allocations = {int(off): bits for off, bits in c["allocations"].items()}
        elif isinstance(value, block_type):
            setattr(chunk, f.name, block_type(**c[f.name]))
        else:
            setattr(chunk, f.name, c[f.name])  # KeyError: the dump is not this layout's
    for block, block_fields in zip(chunk.md_blocks, c["md_blocks"]):
        for name, v in block_fields.items():
            setattr(block, name, v)
    return chunk


def _seed_chunk(c: dict[str, Any], geometry: Geometry) -> PcpuChunk:
    chunk = PcpuChunk.zalloc("dynamic", c["nr_pages"], geometry.nr_bits, len(c["md_blocks"]))
    for block, block_fields in zip(chunk.md_blocks, c["md_blocks"]):
        for name, v in block_fields.items():
            setattr(block, name, v)
    for name in (*INT_FIELDS, *FLAG_FIELDS):
        setattr(chunk, name, c[name])
    chunk.allocations = {int(off): bits for off, bits in c["allocations"].items()}
    return chunk


def to_model(dump: dict[str, object], geometry: Geometry) -> tuple[PcpuAllocator, Any]:
    """The allocator globals and the chunk of ``dump`` (a harness's ``dump()``) as the model objects of its layout."""
    layout = str(dump["layout"])
    chunk_type, allocator = MODEL_OF_LAYOUT[layout]
    c = dynamic_chunk(dump)
    alloc = allocator(geometry.block_bits, geometry.nr_pages)
    alloc.pcpu_nr_empty_pop_pages = int(dump["pcpu_nr_empty_pop_pages"])  # type: ignore[arg-type]
    chunk = _seed_chunk(c, geometry) if layout == "seed" else _release_chunk(chunk_type, c, geometry)
    chunk.alloc_map.value = _bits(c["alloc_map"])
    chunk.bound_map.value = _bits(c["bound_map"])
    chunk.populated.value = _bits(c["populated"])
    return alloc, chunk
