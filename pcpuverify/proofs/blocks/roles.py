"""What each block-level function does to one block, in Z3 and on the model, side by side.

A *role* is one function's part on one block.  ``pcpu_block_update_hint_alloc``
and ``_free`` touch a block in one of four ways, by where the area ``[lo, hi)``
(block offsets) lies: inside it (``same``), from ``lo`` to its end and on into
the next block (``start``), from the previous block to ``hi`` (``end``), or
across all of it (``middle``).  2017's ``pcpu_block_update`` does not exist
yet: its lines are the same-block branch of ``pcpu_block_update_hint_free``.

Symbolic side: the encoder's own functions on a one-block chunk wherever the
block is the area's start block, so block 0 (``refresh``, ``same``,
``start``: the next block lies past the one-block array, where the encoder
reads zeros and drops writes).  An ``end`` or ``middle`` block would need the
area to start before block 0, so those roles restate the function's few lines
for that block with the encoder's primitives, as does the one line of
``pcpu_free_area`` before the free (``block->first_free = min(...)``).
``tests/test_blocks.py`` holds both sides equal on concrete blocks.

Concrete side: the model's own function on a chunk of three blocks whose
middle block is the one, every other bit allocated, the area spilling one bit
into a neighbour for ``start``, ``end`` and ``middle``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import z3

from pcpuverify.model.chunk import PcpuBitmapMd
from pcpuverify.proofs.blocks.state import ConcreteBlock, block_geometry, md_of, model_chunk, with_block
from pcpuverify.symbolic.bv import Bits, I, Int, range_mask, smin
from pcpuverify.symbolic.encode import SymPercpu
from pcpuverify.symbolic.longest_run import RunCuts
from pcpuverify.symbolic.state import SymBlock, SymChunk
from pcpuverify.symbolic.subjects import subject

AREA_ROLES = ("same", "start", "end", "middle")


@dataclass(frozen=True)
class Role:
    function: str  # the kernel function
    part: str  # "" for the whole function, else one of AREA_ROLES
    kind: str  # "refresh", "alloc" or "free"

    @property
    def name(self) -> str:
        return f"{self.function}:{self.part}" if self.part else self.function


REFRESH = Role("pcpu_block_refresh_hint", "", "refresh")
ALLOC_ROLES = tuple(Role("pcpu_block_update_hint_alloc", p, "alloc") for p in AREA_ROLES)
FREE_ROLES = tuple(Role("pcpu_block_update_hint_free", p, "free") for p in AREA_ROLES)
ROLES = (REFRESH, *ALLOC_ROLES, *FREE_ROLES)


@dataclass(frozen=True)
class Area:
    """The block offsets ``[lo, hi)`` of the area, and the range constraint its role puts on them."""

    lo: Int
    hi: Int
    allowed: z3.BoolRef


def area(role: Role, block_bits: int, prefix: str = "area") -> Area:
    B = block_bits
    lo, hi = z3.BitVec(f"{prefix}.lo", 16), z3.BitVec(f"{prefix}.hi", 16)
    allowed = {
        "same": z3.And(lo >= 0, lo < hi, hi <= B),
        "start": z3.And(lo >= 0, lo < B, hi == B),
        "end": z3.And(lo == 0, hi >= 1, hi <= B),
        "middle": z3.And(lo == 0, hi == B),
        "": z3.And(lo == 0, hi == 0),
    }[role.part]
    return Area(lo, hi, allowed)


# -- Z3 --------------------------------------------------------------------------------------------


def encoder(variant: str, block_bits: int) -> SymPercpu:
    return subject(variant).require_encoding()(block_geometry(block_bits))


def area_mask(a: Area, block_bits: int) -> z3.BitVecRef:
    return range_mask(a.lo, a.hi, block_bits)


def post_bits(role: Role, pre: SymChunk, a: Area) -> z3.BitVecRef:
    """The block's bits when the function runs: the caller has already set or cleared the area."""
    B = pre.geometry.block_bits
    if role.kind == "alloc":
        return pre.alloc_map | area_mask(a, B)
    if role.kind == "free":
        return pre.alloc_map & ~area_mask(a, B)
    return pre.alloc_map


def transition(variant: str, role: Role, pre: SymChunk, a: Area, cuts: RunCuts | None = None) -> SymChunk:
    """The block after ``role`` (its bits and metadata) from the block before it (``cuts``: the refresh's
    longest-run circuit cut, ``proofs/blocks/run_lemma.py``)."""
    B = pre.geometry.block_bits
    enc = encoder(variant, B)
    enc.run_cuts = cuts
    md = md_of(pre)
    now = with_block(pre, post_bits(role, pre, a), md)
    spill = B - a.lo + 1  # an area from lo on, one bit into the next block
    if role is REFRESH:
        return enc.pcpu_block_refresh_hint(now, I(0))
    if role.kind == "alloc":
        if role.part == "same":
            return enc.pcpu_block_update_hint_alloc(now, a.lo, a.hi - a.lo)[0]
        if role.part == "start":
            return enc.pcpu_block_update_hint_alloc(now, a.lo, spill)[0]
        if role.part == "end":  # e_block->first_free = find_next_zero_bit(..., e_off); pcpu_block_refresh_hint
            ff, _ = Bits(now.alloc_map, B).find_next_zero_bit(I(B), a.hi)
            return enc.pcpu_block_refresh_hint(with_block(now, now.alloc_map, replace(md, first_free=ff)), I(0))
        # in-between md_blocks: contig_hint, left_free, right_free = 0
        return with_block(now, now.alloc_map, SymBlock(I(0), md.contig_hint_start, I(0), I(0), md.first_free))
    if role.part in ("same", "start"):  # pcpu_free_area: block->first_free = min(block->first_free, off)
        now = with_block(now, now.alloc_map, replace(md, first_free=smin(md.first_free, a.lo)))
        size = a.hi - a.lo if role.part == "same" else spill
        return enc.pcpu_block_update_hint_free(now, a.lo, size)[0]
    if role.part == "end":
        return with_block(now, now.alloc_map, _free_end_block(now, a.hi))
    return with_block(now, now.alloc_map, SymBlock(I(B), I(0), I(B), I(B), I(0)))  # reset md_blocks in the middle


def free_region(variant: str, pre: SymChunk, a: Area) -> tuple[Int, Int]:
    """Where ``pcpu_block_update_hint_free`` finds the free region of a free inside the block (``free:same``):
    the encoder's own terms, from the same bits, hints and block range as ``transition`` (which also lowers
    ``first_free`` first; ``free_region`` does not read it), so both name one term (``proofs/blocks/freed_run.py``)."""
    enc = encoder(variant, pre.geometry.block_bits)
    now = with_block(pre, post_bits(FREE_ROLES[0], pre, a), md_of(pre))
    s_index, e_index, s_off, e_off = enc._block_range(a.lo, a.hi - a.lo)
    start, end, _ = enc.free_region(now, s_index, e_index, s_off, e_off)
    return start, end


def _free_end_block(now: SymChunk, e_off: Int) -> SymBlock:
    """``pcpu_block_update_hint_free``'s lines for ``e_block`` when the free spans blocks."""
    B = now.geometry.block_bits
    e_block = md_of(now)
    next_bit, _ = Bits(now.alloc_map, B).find_next_bit(I(B), e_off)
    end = z3.If(e_off == e_block.contig_hint_start, e_block.contig_hint_start + e_block.contig_hint, next_bit)
    grows = end > e_block.contig_hint
    kept = SymBlock(z3.If(grows, end, e_block.contig_hint), z3.If(grows, I(0), e_block.contig_hint_start),
                    end, e_block.right_free, I(0))
    whole = SymBlock(I(B), I(0), I(B), I(B), I(0))  # end == B: e_index += 1, reset with the middle ones
    return whole.merge(end == B, kept)


# -- the model -------------------------------------------------------------------------------------


def run_on_model(variant: str, role: Role, before: ConcreteBlock, lo: int, hi: int) -> ConcreteBlock:
    """The model's own function on a three-block chunk whose middle block is ``before``: that block after."""
    B = before.block_bits
    if role.kind == "read":
        return before
    alloc = subject(variant).model(B, 3)
    chunk = model_chunk(alloc)
    full = (1 << B) - 1
    chunk.md_blocks.blocks[1] = replace(before.md)
    bit_off, bit_size = B + lo, hi - lo
    if role.part in ("start", "middle"):
        bit_size += 1  # on into block 2
    if role.part in ("end", "middle"):
        bit_off, bit_size = bit_off - 1, bit_size + 1  # from the last bit of block 0
    area_bits = ((1 << bit_size) - 1) << bit_off if role is not REFRESH else 0
    everything = (full << (2 * B)) | (before.bits << B) | full
    chunk.alloc_map.value = everything | area_bits if role.kind == "alloc" else everything & ~area_bits
    if role is REFRESH:
        alloc.pcpu_block_refresh_hint(chunk, 1)
    elif role.kind == "alloc":
        alloc.pcpu_block_update_hint_alloc(chunk, bit_off, bit_size)
    else:
        block = chunk.md_blocks[alloc.pcpu_off_to_block_index(bit_off)]  # pcpu_free_area's first_free line
        block.first_free = min(block.first_free, bit_off % B)
        alloc.pcpu_block_update_hint_free(chunk, bit_off, bit_size)
    return ConcreteBlock(B, (chunk.alloc_map.value >> B) & full, PcpuBitmapMd(**vars(chunk.md_blocks[1])))
