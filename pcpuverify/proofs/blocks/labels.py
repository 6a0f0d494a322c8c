"""The geometry labels of the compositional rows: ``block1024`` (one block's contracts) and ``4xblock1024``.

They are not ``PAGESxBITS`` geometries: a ``block`` row proves a contract on
one block of that many bits, a ``NxblockB`` row proves a chunk obligation
over N blocks of B bits seen only through their metadata
(``docs/design.md``, "Compositional proofs").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pcpuverify.model.geometry import MAX_BLOCK_BITS, MAX_PAGES, MIN_BLOCK_BITS, GeometryError
from pcpuverify.symbolic.bv import INT_W

_LABEL = re.compile(r"(?:(\d+)x)?block(\d+)")
# a composed chunk's bit offsets, and the sum of two of them, fit INT_W-bit signed ints
MAX_COMPOSED_BITS = 1 << (INT_W - 3)


@dataclass(frozen=True)
class BlockLabel:
    block_bits: int
    nr_blocks: int | None  # None: the block contracts; N: the chunk obligations over N blocks

    @property
    def name(self) -> str:
        return block_label(self.block_bits, self.nr_blocks)

    def to_json(self) -> dict[str, object]:
        """What a cache key records of it (as ``Geometry.to_json`` does of a geometry)."""
        return {"label": self.name, "block_bits": self.block_bits, "nr_blocks": self.nr_blocks}


def block_label(block_bits: int, nr_blocks: int | None = None) -> str:
    return f"block{block_bits}" if nr_blocks is None else f"{nr_blocks}xblock{block_bits}"


def is_block_label(spec: str) -> bool:
    return _LABEL.fullmatch(spec.strip().lower()) is not None


def parse_block_label(spec: str) -> BlockLabel:
    """``block64`` or ``4xblock1024``; one line naming what is wrong otherwise."""
    m = _LABEL.fullmatch(spec.strip().lower())
    if m is None:
        raise GeometryError(f"a compositional label is blockBITS or NxblockBITS, e.g. block1024 or 4xblock1024"
                            f" (got {spec!r})")
    nr_blocks, bits = (int(m.group(1)) if m.group(1) else None), int(m.group(2))
    if bits & (bits - 1) or not MIN_BLOCK_BITS <= bits <= MAX_BLOCK_BITS:
        raise GeometryError(f"{spec}: bits per block must be a power of two between {MIN_BLOCK_BITS} and"
                            f" {MAX_BLOCK_BITS}")
    if nr_blocks is not None and not 1 <= nr_blocks <= MAX_PAGES:
        raise GeometryError(f"{spec}: a composed chunk has between 1 and {MAX_PAGES} blocks")
    if nr_blocks is not None and nr_blocks * bits > MAX_COMPOSED_BITS:
        raise GeometryError(f"{spec}: a composed chunk has at most {MAX_COMPOSED_BITS} bits ({INT_W}-bit C ints),"
                            f" e.g. 8xblock1024 or 64xblock128")
    return BlockLabel(bits, nr_blocks)
