"""Z3 terms translated to Bitwuzla and cvc5 mean what they mean in Z3.

Every operation the translator knows is applied to every pair of 3-bit
values (division and shifts by zero and past the width included), and random
terms over variables are evaluated under random assignments: the value Z3
computes must be the only value the other solver allows (sat with it, unsat
with anything else), and a sat answer's model must give it back.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import z3

from pcpuverify.proofs.backends import Limits, solve, z3_model
from pcpuverify.proofs.translate import INDEXED, OPS, Untranslatable, translator

LIMITS = Limits(rlimit=50_000_000, seed=0, timeout=60.0)
OTHERS = ("bitwuzla", "cvc5")
W = 3

BINARY: dict[str, Callable[[z3.BitVecRef, z3.BitVecRef], z3.ExprRef]] = {
    "bvadd": lambda a, b: a + b, "bvsub": lambda a, b: a - b, "bvmul": lambda a, b: a * b,
    "bvsdiv": lambda a, b: a / b, "bvudiv": z3.UDiv, "bvsrem": z3.SRem, "bvurem": z3.URem,
    "bvsmod": lambda a, b: a % b, "bvand": lambda a, b: a & b, "bvor": lambda a, b: a | b,
    "bvxor": lambda a, b: a ^ b, "bvshl": lambda a, b: a << b, "bvlshr": z3.LShR,
    "bvashr": lambda a, b: a >> b, "concat": z3.Concat,
    "bvnand": lambda a, b: z3.BitVecRef(z3.Z3_mk_bvnand(a.ctx_ref(), a.as_ast(), b.as_ast())),
    "bvnor": lambda a, b: z3.BitVecRef(z3.Z3_mk_bvnor(a.ctx_ref(), a.as_ast(), b.as_ast())),
    "bvxnor": lambda a, b: z3.BitVecRef(z3.Z3_mk_bvxnor(a.ctx_ref(), a.as_ast(), b.as_ast())),
    "bvule": z3.ULE, "bvsle": lambda a, b: a <= b, "bvuge": z3.UGE, "bvsge": lambda a, b: a >= b,
    "bvult": z3.ULT, "bvslt": lambda a, b: a < b, "bvugt": z3.UGT, "bvsgt": lambda a, b: a > b,
    "eq": lambda a, b: a == b, "distinct": lambda a, b: z3.Distinct(a, b),
}
UNARY: dict[str, Callable[[z3.BitVecRef], z3.ExprRef]] = {
    "bvneg": lambda a: -a, "bvnot": lambda a: ~a,
    "bvredor": lambda a: z3.BitVecRef(z3.Z3_mk_bvredor(a.ctx_ref(), a.as_ast())),
    "bvredand": lambda a: z3.BitVecRef(z3.Z3_mk_bvredand(a.ctx_ref(), a.as_ast())),
    "extract": lambda a: z3.Extract(2, 1, a), "zero_extend": lambda a: z3.ZeroExt(2, a),
    "sign_extend": lambda a: z3.SignExt(2, a), "repeat": lambda a: z3.RepeatBitVec(2, a),
}
BOOLEAN: dict[str, Callable[[z3.BoolRef, z3.BoolRef], z3.ExprRef]] = {
    "and": lambda p, q: z3.And(p, q, p), "or": lambda p, q: z3.Or(p, q, q), "not": lambda p, q: z3.Not(p),
    "implies": z3.Implies, "xor": z3.Xor, "ite": lambda p, q: z3.If(p, z3.BitVecVal(5, W), z3.BitVecVal(2, W)),
}


def test_every_known_operation_is_exercised() -> None:
    """The tables above cover every operation the translator claims (so no translation goes untested)."""
    assert set(OPS.values()) | set(INDEXED.values()) == set(BINARY) | set(UNARY) | set(BOOLEAN)


def _value(term: z3.ExprRef) -> z3.ExprRef:
    v = z3.simplify(term)
    assert z3.is_bv_value(v) or z3.is_true(v) or z3.is_false(v), f"Z3 does not evaluate {term}"
    return v


def _agrees(solver: str, terms: list[z3.ExprRef], fixed: list[z3.BoolRef]) -> None:
    """Under ``fixed``, each term has exactly Z3's value in ``solver``, and its model says so."""
    expected = [_value(z3.substitute(t, *[(f.arg(0), f.arg(1)) for f in fixed])) for t in terms]
    outs = [z3.BitVec(f"out{i}", t.size()) if z3.is_bv(t) else z3.Bool(f"out{i}") for i, t in enumerate(terms)]
    defs = [o == t for o, t in zip(outs, terms)]
    sat = solve(solver, [*fixed, *defs], LIMITS)
    assert sat.status == "sat", (solver, sat.reason)
    model = z3_model(sat.values)
    for o, e, t in zip(outs, expected, terms):
        assert z3.simplify(model.eval(o, True) == e), f"{solver}: {t} is {model.eval(o, True)}, Z3 says {e}"
    unsat = solve(solver, [*fixed, *defs, z3.Or(*[o != e for o, e in zip(outs, expected)])], LIMITS)
    assert unsat.status == "unsat", f"{solver} allows another value for one of {terms}"


@pytest.mark.parametrize("solver", OTHERS)
def test_operations_on_every_pair_of_values(solver: str) -> None:
    a, b = z3.BitVec("a", W), z3.BitVec("b", W)
    p, q = z3.Bool("p"), z3.Bool("q")
    for x in range(1 << W):
        for y in range(1 << W):
            fixed = [a == x, b == y, p == bool(x & 1), q == bool(y & 1)]
            terms = [f(a, b) for f in BINARY.values()]
            if y == 0:
                terms += [f(a) for f in UNARY.values()] + [f(p, q) for f in BOOLEAN.values()]
            _agrees(solver, terms, fixed)


ARITHMETIC = ["bvadd", "bvsub", "bvmul", "bvsdiv", "bvudiv", "bvsrem", "bvurem", "bvsmod", "bvand", "bvor", "bvxor",
              "bvshl", "bvlshr", "bvashr", "bvnand", "bvnor", "bvxnor"]


def _random_term(rng: random.Random, depth: int, vs: list[z3.BitVecRef]) -> z3.BitVecRef:
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(vs) if rng.random() < 0.8 else z3.BitVecVal(rng.randrange(1 << W), W)
    kind = rng.randrange(5)
    a, b = _random_term(rng, depth - 1, vs), _random_term(rng, depth - 1, vs)
    if kind == 0:
        return BINARY[rng.choice(ARITHMETIC)](a, b)
    if kind == 1:
        cmp = rng.choice(["bvule", "bvsle", "bvult", "bvslt", "eq", "distinct"])
        return z3.If(BINARY[cmp](a, b), a, b)
    if kind == 2:
        return z3.Extract(W - 1, 0, z3.Concat(a, b) if rng.random() < 0.5 else z3.ZeroExt(3, a) << 1)
    if kind == 3:
        return UNARY[rng.choice(["bvneg", "bvnot"])](a)
    return z3.ZeroExt(W - 1, UNARY[rng.choice(["bvredor", "bvredand"])](a))


@pytest.mark.parametrize("solver", OTHERS)
def test_random_terms(solver: str) -> None:
    rng = random.Random(12)
    vs = [z3.BitVec(f"v{i}", W) for i in range(3)]
    for _ in range(40):
        terms = [_random_term(rng, 4, vs) for _ in range(5)]
        _agrees(solver, terms, [v == rng.randrange(1 << W) for v in vs])


@pytest.mark.parametrize("solver", OTHERS)
def test_outside_qf_bv_is_refused(solver: str) -> None:
    f = z3.Function("f", z3.BitVecSort(4), z3.BitVecSort(4))
    x = z3.BitVec("x", 4)
    for term in [f(x) == x, z3.Int("i") > 0, z3.ForAll([x], x == x), z3.BV2Int(x) > 1, z3.RotateLeft(x, 1) == x]:
        with pytest.raises(Untranslatable):
            translator(solver)(term)
