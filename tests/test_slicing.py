"""Cone-of-influence slicing: the read sets come from the terms, and no verdict changes with or without it."""

from __future__ import annotations

import pytest
import z3

from pcpuverify.invariants.base import Invariant
from pcpuverify.invariants.check import STATE_INVARIANTS
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.obligations import OPS, transition
from pcpuverify.proofs.results import Result
from pcpuverify.proofs.slicing import Cone
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.symbolic.state import SymChunk, fresh_chunk
from pcpuverify.symbolic.subjects import subject

ONE_BLOCK = Geometry.parse("1x8")
STATE = [i for i in STATE_INVARIANTS if i.z3 is not None]


def _names(cone: Cone, mask: int) -> set[str]:
    return {name for name, bit in cone.bit.items() if mask & bit}


@pytest.mark.parametrize("kind", OPS)
def test_read_sets_are_the_constants_a_term_depends_on(kind: str) -> None:
    """Every invariant after every operation at 2x8: a constant is read exactly when replacing it by a fresh
    one (Z3's own substitution) changes the term."""
    g = Geometry.parse("2x8")
    pre = fresh_chunk(g, "pre")
    t = transition(subject("fixed").require_encoding()(g), kind, pre, "op")
    candidates = [*_constants(pre), *[v for v in vars(t.op).values() if z3.is_const(v) and not z3.is_true(v)
                                      and not z3.is_false(v) and not z3.is_bv_value(v)]]
    cone = Cone()
    for inv in STATE:
        term = inv.z3(t.step.post)
        changed = {str(c) for c in candidates if not z3.substitute(term, (c, z3.FreshConst(c.sort()))).eq(term)}
        assert _names(cone, cone.reads(term)) == changed, inv.name


def _constants(chunk: SymChunk) -> list[z3.ExprRef]:
    return [v for name, v in vars(chunk).items() if name not in ("geometry", "md_blocks")] + [
        v for block in chunk.md_blocks for v in vars(block).values()]


def test_a_slice_keeps_the_invariants_that_share_a_constant_in_their_order() -> None:
    x, y, z = z3.BitVecs("x y z", 8)
    invs = [_inv("on-y", y > 1), _inv("on-z", z > 1), _inv("on-x-and-z", x + z > 1)]
    pre = fresh_chunk(ONE_BLOCK, "pre")

    def on_pre(inv: Invariant) -> z3.BoolRef:
        return inv.z3(pre)

    assert [i.name for i in Cone().slice(x == 0, invs, on_pre)] == ["on-x-and-z"]
    assert [i.name for i in Cone().slice(z3.And(x == 0, z == y), invs, on_pre)] == ["on-y", "on-z", "on-x-and-z"]
    assert Cone().slice(z3.BoolVal(True), invs, on_pre) == []


def _inv(name: str, term: z3.BoolRef) -> Invariant:
    """A state invariant whose predicate is ``term`` whatever the chunk (never registered)."""
    return Invariant(name, "test", "", "state", lambda *args: iter(()), False, z3=lambda chunk: term)


def _rows(results: list[Result]) -> list[tuple[str, str, str]]:
    return [(r.invariant, r.op, r.verdict.value) for r in results]


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["fixed", "v1"])
def test_slicing_changes_no_verdict(variant: str) -> None:
    sliced = run_suite(variant, ONE_BLOCK, SuiteOptions(depth=3))
    assert _rows(sliced) == _rows(run_suite(variant, ONE_BLOCK, SuiteOptions(depth=3, slicing=False)))


@pytest.mark.slow
def test_a_slice_that_is_not_enough_falls_back_to_the_whole_strengthening(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every slice emptied: each consecution query the strengthening is needed for comes back sat, is asked
    again with all of it, and the verdicts are those of the unsliced suite."""
    def nothing(self: Cone, target: z3.ExprRef, strengthening: list[Invariant], pre: SymChunk) -> list[Invariant]:
        return []

    whole = run_suite("fixed", ONE_BLOCK, SuiteOptions(depth=3, slicing=False))
    monkeypatch.setattr(Cone, "slice", nothing)
    emptied = run_suite("fixed", ONE_BLOCK, SuiteOptions(depth=3))
    assert _rows(emptied) == _rows(whole)
    assert any(any(k.endswith("(sliced)") for k in r.extra.get("solvers", {})) for r in emptied)
