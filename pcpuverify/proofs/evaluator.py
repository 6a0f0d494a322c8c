"""The terms a proof asks the solver about, built once and evaluated on concrete states (for conformance).

Encoding an operation again on a chunk of constants at every step cost about 70 ms at 2x8 (mainline), most
of a suite's conformance check.  Here each operation's transition is built once per subject and geometry on
a symbolic chunk and symbolic arguments (``obligations.transition``, as the suite builds it), and so is each
invariant's predicate; a step substitutes the state's values and the operation's arguments into them and
simplifies, about 3 ms.  It also checks the very terms the proofs use, not a second encoding of constants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import z3

from pcpuverify.invariants.base import Invariant
from pcpuverify.invariants.check import invariants_for
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, Free, Op, Populate, op_name
from pcpuverify.model.state import BITMAP_FIELDS
from pcpuverify.proofs.obligations import Transition, transition
from pcpuverify.symbolic.bv import INT_W, I
from pcpuverify.symbolic.encode import SymPercpu
from pcpuverify.symbolic.release_state import SymReleaseChunk, release_layout
from pcpuverify.symbolic.state import BLOCK_FIELDS, CHUNK_FIELDS, GHOST_FIELDS, SymChunk, SymOp, block_key

Value = int | bool
Pairs = list[tuple[z3.ExprRef, z3.ExprRef]]

UNSIGNED = frozenset((*BITMAP_FIELDS, *GHOST_FIELDS))  # bitmaps read as unsigned; C's ints are signed


def field_terms(chunk: SymChunk | SymReleaseChunk) -> dict[str, z3.ExprRef]:
    """Every value of a symbolic chunk by its flat name: the keys of ``conformance.model_fields``."""
    out: dict[str, z3.ExprRef] = {f: getattr(chunk, f) for f in (*BITMAP_FIELDS, *GHOST_FIELDS)}
    layout = release_layout(chunk)
    if layout is not None:
        out.update({f: getattr(chunk, f) for f in layout.chunk_fields})
        for name in layout.singles:
            out.update({f"{name}.{f}": getattr(getattr(chunk, name), f) for f in layout.block_fields})
        for i, md in enumerate(chunk.md_blocks):
            out.update({f"md_blocks[{i}].{f}": getattr(md, f) for f in layout.block_fields})
        return out
    out.update({f: getattr(chunk, f) for f in CHUNK_FIELDS})
    for i, block in enumerate(chunk.md_blocks):
        out.update({block_key(i, f): getattr(block, f) for f in BLOCK_FIELDS})
    return out


def signed_value(width: int, n: int, signed: bool) -> int:
    """A bit-vector's value ``n`` as C reads it: an int of ``INT_W`` bits signed, anything else unsigned."""
    return n - (1 << width) if signed and width == INT_W and n >= 1 << (INT_W - 1) else n


@dataclass(frozen=True)
class Packed:
    """Named terms evaluated together: one substitution and one simplification for all of them."""

    names: tuple[str, ...]
    widths: tuple[int, ...]  # 0: a Boolean
    signed: tuple[bool, ...]
    whole: z3.BitVecRef

    @staticmethod
    def of(named: Mapping[str, z3.ExprRef], unsigned: frozenset[str] = frozenset()) -> Packed:
        parts = [z3.If(t, z3.BitVecVal(1, 1), z3.BitVecVal(0, 1)) if z3.is_bool(t) else t for t in named.values()]
        whole = z3.Concat(*parts) if len(parts) > 1 else parts[0] if parts else z3.BitVecVal(0, 1)
        return Packed(tuple(named), tuple(0 if z3.is_bool(t) else t.size() for t in named.values()),
                      tuple(name not in unsigned for name in named), whole)

    def at(self, pairs: Pairs) -> dict[str, Value]:
        """Each term's value once ``pairs`` (variable, constant) are substituted."""
        value = z3.simplify(z3.substitute(self.whole, *pairs))
        if not z3.is_bv_value(value):
            raise ValueError(f"the terms did not reduce to constants: {value}")
        n, shift, out = value.as_long(), value.size(), {}
        for name, width, signed in zip(self.names, self.widths, self.signed):
            shift -= max(width, 1)
            bits = (n >> shift) & ((1 << max(width, 1)) - 1)
            out[name] = bool(bits) if width == 0 else signed_value(width, bits, signed)
        return out


@dataclass(frozen=True)
class StepValues:
    """One operation's transition evaluated on a concrete state."""

    post: dict[str, Value]  # the chunk after it, by flat name
    oob: bool
    oob_write: bool
    bit_off: int
    unrolled: bool
    step_invariants: dict[str, bool]  # each step invariant's predicate


def sym_op_of(op: Op) -> SymOp:
    """A concrete operation as a symbolic one of constants."""
    if isinstance(op, Alloc):
        return SymOp("alloc", bits=I(op.bits), align=I(op.align), pop_only=z3.BoolVal(op.pop_only))
    if isinstance(op, Free):
        return SymOp("free", bit_off=I(op.bit_off))
    kind = "populate" if isinstance(op, Populate) else "depopulate"
    return SymOp(kind, page_start=I(op.page_start), page_end=I(op.page_end))


OUTCOME = ("oob", "oob_write", "bit_off", "unrolled")


def _variables(op: SymOp) -> list[str]:
    """The arguments a symbolic operation leaves free (the others are the defaults of its kind)."""
    names = ("bits", "align", "pop_only", "bit_off", "page_start", "page_end")
    terms = {n: getattr(op, n) for n in names}
    return [n for n, t in terms.items() if z3.is_const(t) and t.decl().kind() == z3.Z3_OP_UNINTERPRETED]


class Evaluator:
    """One subject's transitions and invariants on one geometry's chunks (any populated pages)."""

    def __init__(self, encoding: type[SymPercpu], geometry: Geometry) -> None:
        self.enc = encoding(geometry)
        invs: Sequence[Invariant] = invariants_for(encoding.chunk_layout)
        self.state_invs = [i for i in invs if i.kind == "state" and i.z3 is not None]
        self.step_invs = [i for i in invs if i.kind == "step"]
        self.pre = self.enc.fresh_chunk("pre")
        self.state = self.enc.fresh_chunk("state")
        self._steps: dict[str, tuple[Transition, Packed]] = {}
        self._state_invariants = Packed.of({i.name: i.z3(self.state) for i in self.state_invs})

    def _compiled(self, kind: str) -> tuple[Transition, Packed]:
        if kind not in self._steps:
            t = transition(self.enc, kind, self.pre, "op")
            post = field_terms(t.step.post)
            named: dict[str, z3.ExprRef] = {**post, "oob": t.step.post.oob, "oob_write": t.step.post.oob_write,
                                            "bit_off": t.step.bit_off, "unrolled": t.step.unrolled}
            named.update({f"step:{i.name}": i.z3(self.pre, t.op, t.step) for i in self.step_invs})
            self._steps[kind] = (t, Packed.of(named, UNSIGNED))
        return self._steps[kind]

    @staticmethod
    def _state_pairs(chunk: SymChunk | SymReleaseChunk, values: Mapping[str, Value], oob: bool) -> Pairs:
        pairs: Pairs = [(var, z3.BitVecVal(int(values[name]), var.size()))
                        for name, var in field_terms(chunk).items()]
        return [*pairs, (chunk.oob, z3.BoolVal(oob)), (chunk.oob_write, z3.BoolVal(False))]

    def step(self, values: Mapping[str, Value], op: Op) -> StepValues:
        """``op`` on the state of ``values`` (``model_fields``)."""
        t, packed = self._compiled(op_name(op))
        concrete = sym_op_of(op)
        args: Pairs = [(getattr(t.op, n), getattr(concrete, n)) for n in _variables(t.op)]
        out = packed.at([*self._state_pairs(self.pre, values, False), *args])
        return StepValues({k: v for k, v in out.items() if k not in OUTCOME and not k.startswith("step:")},
                          bool(out["oob"]), bool(out["oob_write"]), int(out["bit_off"]), bool(out["unrolled"]),
                          {k.removeprefix("step:"): bool(v) for k, v in out.items() if k.startswith("step:")})

    def state_invariants(self, values: Mapping[str, Value], oob: bool) -> dict[str, bool]:
        """Each state invariant's predicate on the state of ``values``, ``oob`` its last step's flag."""
        out = self._state_invariants.at(self._state_pairs(self.state, values, oob))
        return {k: bool(v) for k, v in out.items()}
