"""``symbolic.bv.sdiv``: C's ``int`` division by a constant, as cheap terms, equal to ``bvsdiv`` for every value."""

from __future__ import annotations

import pytest
import z3

from pcpuverify.symbolic.bv import INT_W, sdiv


@pytest.mark.parametrize("d", [1, 2, 4, 8, 32, 1024, 3, 12])
def test_sdiv_is_bvsdiv_for_every_int(d: int) -> None:
    x = z3.BitVec("x", INT_W)
    s = z3.Solver()
    s.add(sdiv(x, d) != x / d)
    assert s.check() == z3.unsat


def test_a_power_of_two_divides_without_a_divider() -> None:
    x = z3.BitVec("x", INT_W)
    def divides(term: z3.ExprRef) -> bool:
        return term.decl().kind() == z3.Z3_OP_BSDIV or any(divides(c) for c in term.children())

    assert not divides(sdiv(x, 32)) and divides(sdiv(x, 12))
    assert [z3.simplify(sdiv(z3.BitVecVal(v, INT_W), 4)).as_signed_long() for v in (-9, -8, -1, 0, 7, 9)] == \
        [-2, -2, 0, 0, 1, 2]
