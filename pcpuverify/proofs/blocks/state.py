"""One block: its bits and its ``pcpu_bitmap_md``, as Z3 terms and as a concrete chunk of the model.

The symbolic block is a ``SymChunk`` of one page of ``B`` bits, so that the
encoder's own functions (``symbolic/encode.py``) and the invariants' own Z3
predicates (``invariants/hints.py``) run on it unchanged: at block scope the
chunk's alloc_map is the block's bits and ``md_blocks[0]`` its metadata.  The
chunk's other fields are unconstrained and never read by what is proved here.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from pcpuverify.invariants.hints import block_hints_match_scan
from pcpuverify.invariants.scan import bits_of, free_runs
from pcpuverify.model.chunk import PcpuBitmapMd, PcpuChunk
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.symbolic.bv import I, Int, lowest_set
from pcpuverify.symbolic.state import BLOCK_FIELDS, SymBlock, SymChunk, fresh_chunk

# the invariant every contract holds the block to, before and after: its own Z3 predicate, at block scope
BLOCK_INVARIANT = block_hints_match_scan


def block_geometry(block_bits: int) -> Geometry:
    return Geometry(block_bits, 1, (0,))


def fresh_block(block_bits: int, prefix: str = "blk") -> SymChunk:
    """An arbitrary block: its bits (``alloc_map``) and ``md_blocks[0]`` free variables."""
    return fresh_chunk(block_geometry(block_bits), prefix)


def md_of(chunk: SymChunk) -> SymBlock:
    return chunk.md_blocks[0]


def with_block(chunk: SymChunk, bits: z3.BitVecRef, md: SymBlock) -> SymChunk:
    return chunk.set(alloc_map=bits, md_blocks=(md,))


def md_in_range(md: SymBlock, block_bits: int) -> z3.BoolRef:
    """What the fields' types and the code's arithmetic give every block (``symbolic/state.well_formed``)."""
    return z3.And([z3.And(getattr(md, f) >= 0, getattr(md, f) <= block_bits) for f in BLOCK_FIELDS])


def block_invariant(chunk: SymChunk) -> z3.BoolRef:
    return BLOCK_INVARIANT.z3(chunk)


def first_zero(bits: z3.BitVecRef, block_bits: int) -> Int:
    """The block's first free bit, ``B`` if none (``find_first_zero_bit``), as the invariant's predicate states it."""
    free = ~bits
    return z3.If(free == 0, I(block_bits), lowest_set(free, block_bits))


@dataclass(frozen=True)
class ConcreteBlock:
    """A block's bits (bit 0 first) and metadata, as a solver's model gives them."""

    block_bits: int
    bits: int
    md: PcpuBitmapMd

    def describe(self) -> str:
        """The bits drawn, then the metadata."""
        m = self.md
        return (f"{drawn_bits(self.bits, self.block_bits)}; contig_hint={m.contig_hint}@{m.contig_hint_start}"
                f" left_free={m.left_free} right_free={m.right_free} first_free={m.first_free}")

    def to_json(self) -> dict[str, object]:
        return block_json(self.block_bits, self.bits, self.md)


def drawn_bits(bits: int, block_bits: int) -> str:
    """A block's bits drawn (up to 64), or the free runs of a wider block."""
    if block_bits <= 64:
        return "bits " + "".join("#" if (bits >> i) & 1 else "." for i in range(block_bits)) + \
            " (# allocated, bit 0 first)"
    runs = free_runs(bits_of(bits, 0, block_bits))
    return f"{block_bits} bits, free at " + (", ".join(f"[{r.start}, {r.start + r.length})" for r in runs) or "none")


def block_json(block_bits: int, bits: int, md: object) -> dict[str, object]:
    """A block in a row's JSON: its bits as a string, bit 0 first, and its metadata's fields."""
    return {"block_bits": block_bits, "alloc_map": format(bits, f"0{block_bits}b")[::-1], "md": vars(md).copy()}


def signed(model: z3.ModelRef, term: z3.BitVecRef) -> int:
    """An int field's value in ``model`` (a C int: signed)."""
    value = model.eval(term, model_completion=True)
    assert isinstance(value, z3.BitVecNumRef)
    return value.as_signed_long()


def concrete_block(model: z3.ModelRef, chunk: SymChunk) -> ConcreteBlock:
    md = md_of(chunk)
    bits = model.eval(chunk.alloc_map, model_completion=True)
    assert isinstance(bits, z3.BitVecNumRef)
    return ConcreteBlock(chunk.geometry.block_bits, bits.as_long(),
                         PcpuBitmapMd(*(signed(model, getattr(md, f)) for f in BLOCK_FIELDS)))


def model_chunk(alloc: PcpuAllocator) -> PcpuChunk:
    """A chunk of ``alloc``'s geometry on the model with every bit allocated and every block's hints zero."""
    chunk = alloc.pcpu_alloc_chunk()
    chunk.alloc_map.value = (1 << chunk.alloc_map.nbits) - 1
    chunk.free_bits = 0
    for md in chunk.md_blocks:
        md.contig_hint = md.contig_hint_start = md.left_free = md.right_free = md.first_free = 0
    return chunk


def block_violations(block: ConcreteBlock) -> list[str]:
    """The invariant's own concrete check on a one-block chunk holding ``block``'s bits and metadata."""
    one = PcpuAllocator(block.block_bits, 1)
    chunk = model_chunk(one)
    chunk.alloc_map.value = block.bits
    chunk.md_blocks.blocks[0] = PcpuBitmapMd(**vars(block.md))
    return [message for _, message in BLOCK_INVARIANT.check(one, chunk)]
