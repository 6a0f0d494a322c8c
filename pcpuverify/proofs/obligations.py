"""What is asked of the solver: the initial chunk, each operation's symbolic arguments and preconditions,
and the way back from a Z3 model to a concrete trace and a drawable state.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, Depopulate, Free, Op, Populate
from pcpuverify.model.state import BITMAP_FIELDS, BLOCK_FIELDS, FLAG_FIELDS, INT_FIELDS
from pcpuverify.symbolic.bv import INT_W, I, bit, popcount
from pcpuverify.symbolic.encode import SymPercpu, SymStep
from pcpuverify.symbolic.release_state import SymReleaseChunk, release_layout
from pcpuverify.symbolic.state import SymChunk, SymOp, vector_widths

OPS = ("alloc", "free", "populate", "depopulate")


def initial_chunk(enc: SymPercpu, populated: z3.BitVecRef) -> SymChunk:
    """``pcpu_alloc_chunk()`` + ``pcpu_chunk_relocate(chunk, -1)``, then the balance work populating ``populated``."""
    g = enc.g
    linked = enc.pcpu_chunk_relocate(enc.pcpu_alloc_chunk(), I(-1))
    count = popcount(populated, g.nr_pages)
    return linked.set(
        populated=populated, nr_populated=count, nr_empty_pop_pages=count, pcpu_nr_empty_pop_pages=count
    )


def symbolic_op(enc: SymPercpu, kind: str, pre: SymChunk, name: str) -> tuple[SymOp, z3.BoolRef]:
    """An operation of ``kind`` with unconstrained arguments named ``name.*``, and what its caller guarantees.

    alloc: 1 <= bits <= nr_bits, align a power of two up to a page; free: a
    live allocation's start; [de]populate: a non-empty page range, and for
    depopulate pages that hold no allocated bit.
    """
    g = enc.g
    if kind == "alloc":
        bits, align = z3.BitVec(f"{name}.bits", INT_W), z3.BitVec(f"{name}.align", INT_W)
        pop_only = z3.Bool(f"{name}.pop_only")
        pre_cond = z3.And(bits >= 1, bits <= enc.max_bits, z3.Or(*[align == a for a in enc.aligns]))
        return SymOp("alloc", bits=bits, align=align, pop_only=pop_only), pre_cond
    if kind == "free":
        bit_off = z3.BitVec(f"{name}.bit_off", INT_W)
        return SymOp("free", bit_off=bit_off), bit(pre.g_start, bit_off, pre.g_start.size())
    ps, pe = z3.BitVec(f"{name}.page_start", INT_W), z3.BitVec(f"{name}.page_end", INT_W)
    cond = z3.And(ps >= 0, ps < pe, pe <= g.nr_pages)
    if kind == "depopulate":
        B = g.block_bits
        pages_free = z3.And(
            *[z3.Implies(z3.And(ps <= p, p < pe), z3.Extract((p + 1) * B - 1, p * B, pre.alloc_map) == 0)
              for p in range(g.nr_pages)]
        )
        cond = z3.And(cond, pages_free)
    return SymOp(kind, page_start=ps, page_end=pe), cond


@dataclass(frozen=True)
class Transition:
    op: SymOp
    precondition: z3.BoolRef
    step: SymStep


def transition(enc: SymPercpu, kind: str, pre: SymChunk, name: str) -> Transition:
    op, cond = symbolic_op(enc, kind, pre, name)
    return Transition(op, cond, enc.step(pre, op))


# -- from a model back to concrete values ------------------------------------------------


def _int(model: z3.ModelRef, term: z3.ExprRef) -> int:
    v = model.eval(term, model_completion=True)
    n = v.as_long()
    return n - (1 << INT_W) if v.size() == INT_W and n >= 1 << (INT_W - 1) else n


def concrete_op(model: z3.ModelRef, op: SymOp) -> Op:
    if op.kind == "alloc":
        return Alloc(_int(model, op.bits), _int(model, op.align), z3.is_true(model.eval(op.pop_only, True)))
    if op.kind == "free":
        return Free(_int(model, op.bit_off))
    cls = Populate if op.kind == "populate" else Depopulate
    return cls(_int(model, op.page_start), _int(model, op.page_end))


def concrete_populated(model: z3.ModelRef, populated: z3.BitVecRef, geometry: Geometry) -> Geometry:
    value = model.eval(populated, True).as_long()
    pages = tuple(p for p in range(geometry.nr_pages) if (value >> p) & 1)
    return Geometry(geometry.block_bits, geometry.nr_pages, pages)


def concrete_state(model: z3.ModelRef, chunk: SymChunk | SymReleaseChunk) -> dict[str, object]:
    """A symbolic chunk under ``model`` in the dump format of ``model/state.py`` (for drawing a CTI)."""
    g = chunk.geometry
    width = vector_widths(g)

    def bits(name: str) -> str:
        v = model.eval(getattr(chunk, name), True).as_long()
        return "".join(str((v >> i) & 1) for i in range(width[name]))

    used = model.eval(chunk.g_used, True).as_long()
    starts = model.eval(chunk.g_start, True).as_long()
    allocations = {}
    for s in range(chunk.g_start.size()):
        if (starts >> s) & 1:
            e = s + 1
            while (used >> e) & 1 and not (starts >> e) & 1:
                e += 1
            allocations[str(s)] = e - s
    layout = release_layout(chunk)
    if layout is not None:
        dynamic: dict[str, object] = {
            "nr_pages": g.nr_pages,
            "alloc_map": bits("alloc_map"),
            "bound_map": bits("bound_map"),
            "populated": bits("populated"),
            "md_blocks": [{f: _int(model, getattr(b, f)) for f in layout.block_fields} for b in chunk.md_blocks],
            **{name: {f: _int(model, getattr(getattr(chunk, name), f)) for f in layout.block_fields}
               for name in layout.singles},
            **{f: _int(model, getattr(chunk, f)) for f in layout.chunk_fields if f != "pcpu_nr_empty_pop_pages"},
            "immutable": False,
            "allocations": allocations,
        }
        return {"variant": "", "pcpu_nr_empty_pop_pages": _int(model, chunk.pcpu_nr_empty_pop_pages),
                "chunks": {"dynamic": dynamic}}
    return {
        "variant": "",
        "pcpu_nr_empty_pop_pages": _int(model, chunk.pcpu_nr_empty_pop_pages),
        "chunks": {
            "dynamic": {
                "nr_pages": g.nr_pages,
                **{f: bits(f) for f in BITMAP_FIELDS},
                "md_blocks": [{f: _int(model, getattr(b, f)) for f in BLOCK_FIELDS} for b in chunk.md_blocks],
                **{f: _int(model, getattr(chunk, f)) for f in INT_FIELDS},
                **dict.fromkeys(FLAG_FIELDS, False),  # the symbolic chunk is a dynamic chunk, not the first
                "allocations": allocations,
            }
        },
    }
