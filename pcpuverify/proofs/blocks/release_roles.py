"""What the scan_hint allocator's block-level functions do to one block: in Z3, on the model and on the C.

The released allocators from 5.2 on (``linux-5.4``, ``mainline``,
``mainline-fixed``) keep 5.2's ``struct pcpu_block_md`` per block (with
``scan_hint``, ``scan_hint_start`` and ``nr_bits``), and update it through
``pcpu_block_update`` ("percpu: add block level scan_hint").  A *role* is
one function's part on one block, as for the posting (``roles``):

- ``pcpu_block_update_scan``: the free area ``[lo, hi)`` the allocation's
  search skipped ("percpu: remember largest area skipped during
  allocation"; what the search guarantees of it is the contract's
  precondition, ``release_contracts.precondition``);
- ``pcpu_block_update_hint_alloc`` and ``_free`` as the area's only
  (``same``), first (``start``), last (``end``) or an inner (``middle``)
  block.

Symbolic side: the encoder's own functions on a one-block chunk wherever
the block is the area's start block (``pcpu_block_update_scan``, the
allocation's ``same`` and ``start``: the next block lies past the one-block
array, where the encoder reads zeros and drops writes).  The free path's
block part is two of the encoder's own calls, ``pcpu_freed_extent`` and
``pcpu_block_update``; the allocation's ``end`` and ``middle`` blocks restate
the function's few lines for that block with the encoder's primitives.
``tests/test_release_blocks.py`` holds both sides equal on concrete blocks.

Concrete side: the model's own function, or the kernel's (a C build), on a
chunk of three blocks whose middle block is the one, every other bit
allocated, the area spilling one bit into a neighbour for ``start``, ``end``
and ``middle`` (``block_call``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import z3

from pcpuverify.kernel.block_step import BLOCK_CALL_PAGES, c_block_step
from pcpuverify.kernel.source import KernelSource
from pcpuverify.model.linux_5_4 import Linux54, PcpuBlockMd
from pcpuverify.proofs.blocks.roles import ALLOC_ROLES, FREE_ROLES, Area, Role, area, post_bits
from pcpuverify.proofs.blocks.state import block_geometry, block_json, drawn_bits, signed
from pcpuverify.symbolic.bv import Bits, I, smin
from pcpuverify.symbolic.encode_linux_5_4 import SymLinux54
from pcpuverify.symbolic.release_state import RELEASE_BLOCK_FIELDS, SymBlockMd, SymChunk54, fresh_chunk54
from pcpuverify.symbolic.subjects import subject

SCAN = Role("pcpu_block_update_scan", "", "scan")
RELEASE_ROLES = (SCAN, *ALLOC_ROLES, *FREE_ROLES)


def fresh_release_block(block_bits: int, prefix: str) -> SymChunk54:
    """An arbitrary block: a one-page chunk whose ``alloc_map`` and ``md_blocks[0]`` are free variables."""
    return fresh_chunk54(block_geometry(block_bits), prefix)


def release_area(role: Role, block_bits: int) -> Area:
    """The area's block offsets; the scan's is any non-empty range of the block."""
    if role is not SCAN:
        return area(role, block_bits)
    lo, hi = z3.BitVec("area.lo", 16), z3.BitVec("area.hi", 16)
    return Area(lo, hi, z3.And(lo >= 0, lo < hi, hi <= block_bits))


def md_of(chunk: SymChunk54) -> SymBlockMd:
    return chunk.md_blocks[0]


# -- Z3 --------------------------------------------------------------------------------------------


def release_encoder(variant: str, block_bits: int) -> SymLinux54:
    enc = subject(variant).require_encoding()(block_geometry(block_bits))
    assert isinstance(enc, SymLinux54), f"{variant} does not keep 5.2's blocks"
    return enc


def release_transition(variant: str, role: Role, pre: SymChunk54, a: Area) -> SymChunk54:
    """The block after ``role`` (its bits and ``md_blocks[0]``) from the block before it."""
    B = pre.geometry.block_bits
    enc = release_encoder(variant, B)
    now = pre.set(alloc_map=post_bits(role, pre, a))  # type: ignore[arg-type]
    md = md_of(now)
    spill = B - a.lo + 1  # an area from lo on, one bit into the next block
    if role is SCAN:
        return enc.pcpu_block_update_scan(now, a.lo, a.hi - a.lo, z3.BoolVal(True))
    if role.kind == "alloc":
        if role.part in ("same", "start"):
            after = enc.pcpu_block_update_hint_alloc(now, a.lo, a.hi - a.lo if role.part == "same" else spill)
            return now.set(md_blocks=(md_of(after),))
        return now.set(md_blocks=(_alloc_end_block(enc, now, a.hi) if role.part == "end" else _cleared(md),))
    zero = I(0)
    if role.part == "middle":  # pcpu_block_update_hint_free: reset md_blocks in the middle
        return now.set(md_blocks=(md.set(first_free=zero, scan_hint=zero, contig_hint_start=zero, contig_hint=I(B),
                                         left_free=I(B), right_free=I(B)),))
    # the free area's start (as s_block) and end (as e_block) within the block, then s_block's or e_block's update
    start, end = enc.pcpu_freed_extent(now, zero, zero, a.lo, a.hi)
    start, end = (zero if role.part == "end" else start), (I(B) if role.part == "start" else end)
    return now.set(md_blocks=(enc.pcpu_block_update(md, start, end),))


def _cleared(md: SymBlockMd) -> SymBlockMd:
    """An allocation's in-between block (and an end block it fills): its hints zero, ``first_free`` kept."""
    zero = I(0)
    return md.set(scan_hint=zero, contig_hint=zero, left_free=zero, right_free=zero)


def _alloc_end_block(enc: SymLinux54, now: SymChunk54, e_off: z3.BitVecRef) -> SymBlockMd:
    """``pcpu_block_update_hint_alloc``'s lines for ``e_block`` when the area spans blocks (5.4 and 7.1.3)."""
    B = now.geometry.block_bits
    e_block = md_of(now)
    ff, _ = Bits(now.alloc_map, B).find_next_zero_bit(I(B), e_off)
    e_block = e_block.set(first_free=ff)
    inner = e_off != B
    e_block = e_block.set(scan_hint=z3.If(z3.And(inner, e_off > e_block.scan_hint_start), I(0), e_block.scan_hint),
                          left_free=z3.If(inner, I(0), e_block.left_free))
    refreshed = md_of(enc.pcpu_block_refresh_hint(now.set(md_blocks=(e_block,)), 0))
    kept = e_block.set(right_free=z3.If(inner, smin(e_block.right_free, B - e_off), e_block.right_free))
    touched = refreshed.merge(z3.And(inner, e_off > e_block.contig_hint_start), kept)
    return touched.merge(inner, _cleared(e_block))  # e_off == B: e_block++, cleared with the in-between ones


# -- the model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseBlock:
    """A block's bits (bit 0 first) and 5.2 metadata, as a solver's model gives them."""

    block_bits: int
    bits: int
    md: PcpuBlockMd

    def describe(self) -> str:
        """The bits drawn, then the metadata."""
        m = self.md
        return (f"{drawn_bits(self.bits, self.block_bits)}; scan_hint={m.scan_hint}@{m.scan_hint_start}"
                f" contig_hint={m.contig_hint}@{m.contig_hint_start} left_free={m.left_free}"
                f" right_free={m.right_free} first_free={m.first_free} nr_bits={m.nr_bits}")

    def to_json(self) -> dict[str, object]:
        return block_json(self.block_bits, self.bits, self.md)


def release_block(model: z3.ModelRef, chunk: SymChunk54) -> ReleaseBlock:
    bits = model.eval(chunk.alloc_map, model_completion=True)
    assert isinstance(bits, z3.BitVecNumRef)
    md = md_of(chunk)
    return ReleaseBlock(chunk.geometry.block_bits, bits.as_long(),
                        PcpuBlockMd(*(signed(model, getattr(md, f)) for f in RELEASE_BLOCK_FIELDS)))


@dataclass(frozen=True)
class BlockCall:
    """A role's call on a chunk of three blocks whose middle block is the one: the chunk's bits once the caller
    has set or cleared the area (spilling one bit into a neighbour for ``start``, ``end`` and ``middle``), its
    blocks and ``chunk_md`` (the neighbours full, their hints zero), and the function's arguments."""

    alloc_map: int
    blocks: tuple[PcpuBlockMd, PcpuBlockMd, PcpuBlockMd]
    chunk_md: PcpuBlockMd
    bit_off: int
    bits: int


def block_call(role: Role, before: ReleaseBlock, lo: int, hi: int) -> BlockCall:
    B = before.block_bits
    full = (1 << B) - 1
    bit_off, bits = B + lo, hi - lo
    if role.part in ("start", "middle"):
        bits += 1  # on into block 2
    if role.part in ("end", "middle"):
        bit_off, bits = bit_off - 1, bits + 1  # from the last bit of block 0
    area_bits = ((1 << bits) - 1) << bit_off
    everything = (full << (2 * B)) | (before.bits << B) | full
    alloc_map = {"alloc": everything | area_bits, "free": everything & ~area_bits}.get(role.kind, everything)
    neighbour = PcpuBlockMd(first_free=B, nr_bits=B)
    return BlockCall(alloc_map, (neighbour, replace(before.md), replace(neighbour)),
                     PcpuBlockMd(first_free=3 * B, nr_bits=3 * B), bit_off, bits)


def run_release_on_model(variant: str, role: Role, before: ReleaseBlock, lo: int, hi: int) -> ReleaseBlock:
    """The model's own function on ``block_call``'s chunk: the middle block after."""
    B = before.block_bits
    alloc = subject(variant).model(B, BLOCK_CALL_PAGES)
    assert isinstance(alloc, Linux54), f"{variant} does not keep 5.2's blocks"
    call = block_call(role, before, lo, hi)
    chunk = alloc.pcpu_alloc_chunk()
    chunk.alloc_map.value, chunk.free_bytes = call.alloc_map, 0
    chunk.md_blocks.blocks[:] = [replace(md) for md in call.blocks]
    chunk.chunk_md = replace(call.chunk_md)
    if role is SCAN:
        alloc.pcpu_block_update_scan(chunk, call.bit_off, call.bits)
    elif role.kind == "alloc":
        alloc.pcpu_block_update_hint_alloc(chunk, call.bit_off, call.bits)
    else:
        alloc.pcpu_block_update_hint_free(chunk, call.bit_off, call.bits)
    return ReleaseBlock(B, (call.alloc_map >> B) & ((1 << B) - 1), replace(chunk.md_blocks[1]))


def run_release_on_c(source: KernelSource, role: Role, before: ReleaseBlock, lo: int, hi: int) -> ReleaseBlock:
    """The kernel's own function (``source``'s C build, ``kernel/block_step.py``) on the same chunk."""
    B = before.block_bits
    call = block_call(role, before, lo, hi)
    after = c_block_step(source, B, call.alloc_map, list(call.blocks), call.chunk_md, role.kind, call.bit_off,
                         call.bits)
    return ReleaseBlock(B, (call.alloc_map >> B) & ((1 << B) - 1), after[1])
