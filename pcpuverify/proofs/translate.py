"""Z3 terms to Bitwuzla and cvc5 terms through their Python APIs, node by node, memoised on the Z3 AST id.

Only QF_BV is translated: Booleans, bit-vectors and the operations listed in
``OPS``, ``INDEXED`` and ``SPECIAL`` (every operation the encodings and the
invariants build, plus the rest of SMT-LIB's QF_BV that Z3's Python API
builds and both back ends share).  Anything else raises ``Untranslatable``: a silently wrong
translation would turn into a wrong verdict.  Z3, Bitwuzla and cvc5 all give
division by zero its SMT-LIB meaning, so the arithmetic translates one to one
(``tests/test_translate.py`` evaluates terms in all three).

The memo keeps each Z3 term alive next to its translation, so that its AST
id is not reused while the entry exists; a suite asks for the same transition
terms in every query, and they are translated once per process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import z3

T = TypeVar("T")  # a back end's term type


class Untranslatable(ValueError):
    """A Z3 term outside the QF_BV fragment this module translates."""


# Z3 operation -> neutral name; n-ary ones (in Z3) are folded left into binary applications
OPS: dict[int, str] = {
    z3.Z3_OP_AND: "and", z3.Z3_OP_OR: "or", z3.Z3_OP_NOT: "not", z3.Z3_OP_IMPLIES: "implies",
    z3.Z3_OP_XOR: "xor", z3.Z3_OP_IFF: "eq", z3.Z3_OP_EQ: "eq", z3.Z3_OP_DISTINCT: "distinct",
    z3.Z3_OP_ITE: "ite",
    z3.Z3_OP_BNEG: "bvneg", z3.Z3_OP_BADD: "bvadd", z3.Z3_OP_BSUB: "bvsub", z3.Z3_OP_BMUL: "bvmul",
    z3.Z3_OP_BSDIV: "bvsdiv", z3.Z3_OP_BUDIV: "bvudiv", z3.Z3_OP_BSREM: "bvsrem", z3.Z3_OP_BUREM: "bvurem",
    z3.Z3_OP_BSMOD: "bvsmod",
    z3.Z3_OP_ULEQ: "bvule", z3.Z3_OP_SLEQ: "bvsle", z3.Z3_OP_UGEQ: "bvuge", z3.Z3_OP_SGEQ: "bvsge",
    z3.Z3_OP_ULT: "bvult", z3.Z3_OP_SLT: "bvslt", z3.Z3_OP_UGT: "bvugt", z3.Z3_OP_SGT: "bvsgt",
    z3.Z3_OP_BAND: "bvand", z3.Z3_OP_BOR: "bvor", z3.Z3_OP_BNOT: "bvnot", z3.Z3_OP_BXOR: "bvxor",
    z3.Z3_OP_BNAND: "bvnand", z3.Z3_OP_BNOR: "bvnor", z3.Z3_OP_BXNOR: "bvxnor",
    z3.Z3_OP_CONCAT: "concat", z3.Z3_OP_BREDOR: "bvredor", z3.Z3_OP_BREDAND: "bvredand",
    z3.Z3_OP_BSHL: "bvshl", z3.Z3_OP_BLSHR: "bvlshr", z3.Z3_OP_BASHR: "bvashr",
}
INDEXED: dict[int, str] = {
    z3.Z3_OP_EXTRACT: "extract", z3.Z3_OP_ZERO_EXT: "zero_extend", z3.Z3_OP_SIGN_EXT: "sign_extend",
    z3.Z3_OP_REPEAT: "repeat",
}
# associative in SMT-LIB and n-ary in Z3: a left fold keeps the meaning
FOLDED = {"and", "or", "xor", "bvadd", "bvmul", "bvand", "bvor", "bvxor", "concat"}


def sort_of(term: z3.ExprRef) -> int | None:
    """The width of a bit-vector term, None for a Boolean; anything else is refused."""
    s = term.sort()
    if s.kind() == z3.Z3_BOOL_SORT:
        return None
    if s.kind() == z3.Z3_BV_SORT:
        return s.size()
    raise Untranslatable(f"sort {s} of {term.sexpr()[:80]}: only Booleans and bit-vectors translate")


class Translator(Generic[T]):
    """The shared walk; a back end supplies constants, values and applications of the neutral names."""

    name = ""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[z3.ExprRef, T]] = {}
        self.consts: dict[tuple[str, int | None], T] = {}  # (name, width or None) -> the back end's constant

    # -- what a back end provides --------------------------------------------------------------

    def const(self, name: str, width: int | None) -> T:
        raise NotImplementedError

    def bool_value(self, value: bool) -> T:
        raise NotImplementedError

    def bv_value(self, value: int, width: int) -> T:
        raise NotImplementedError

    def apply(self, op: str, args: list[T], indices: list[int]) -> T:
        raise NotImplementedError

    # -- the walk ---------------------------------------------------------------------------------

    def __call__(self, term: z3.ExprRef) -> T:
        """The back end's term for ``term``; iterative, so deep terms do not exhaust Python's stack."""
        stack: list[tuple[z3.ExprRef, bool]] = [(term, False)]
        while stack:
            e, ready = stack.pop()
            key = e.get_id()
            if key in self._memo:
                continue
            if not z3.is_app(e):
                raise Untranslatable(f"{e.sexpr()[:80]}: quantifiers and bound variables do not translate")
            children = e.children()
            if not ready:
                stack.append((e, True))
                stack.extend((c, False) for c in children if c.get_id() not in self._memo)
                continue
            self._memo[key] = (e, self._node(e, [self._memo[c.get_id()][1] for c in children]))
        return self._memo[term.get_id()][1]

    def _node(self, e: z3.ExprRef, args: list[T]) -> T:
        decl = e.decl()
        kind = decl.kind()
        if kind == z3.Z3_OP_TRUE:
            return self.bool_value(True)
        if kind == z3.Z3_OP_FALSE:
            return self.bool_value(False)
        if kind == z3.Z3_OP_BNUM:
            return self.bv_value(e.as_long(), e.size())
        if kind == z3.Z3_OP_UNINTERPRETED and decl.arity() == 0:
            key = (decl.name(), sort_of(e))
            if key not in self.consts:
                self.consts[key] = self.const(*key)
            return self.consts[key]
        if kind in INDEXED:
            return self.apply(INDEXED[kind], args, [int(p) for p in decl.params()])
        op = OPS.get(kind)
        if op is None:
            raise Untranslatable(f"Z3 operation {decl.name()!r} (kind {kind}) has no {self.name} translation")
        if op in FOLDED and len(args) > 2:
            acc = args[0]
            for a in args[1:]:
                acc = self.apply(op, [acc, a], [])
            return acc
        if op in ("and", "or") and len(args) < 2:  # Z3 allows 0 or 1 arguments
            return args[0] if args else self.bool_value(op == "and")
        return self.apply(op, args, [])

    def translate_all(self, terms: Iterable[z3.ExprRef]) -> list[T]:
        return [self(t) for t in terms]


# -- Bitwuzla -------------------------------------------------------------------------------------------


class BitwuzlaTranslator(Translator[Any]):
    name = "bitwuzla"

    def __init__(self) -> None:
        import bitwuzla as bw

        super().__init__()
        self.bw = bw
        self.tm = bw.TermManager()
        self._bv_sorts: dict[int, Any] = {}
        k = bw.Kind
        self._kinds: dict[str, Any] = {
            "and": k.AND, "or": k.OR, "not": k.NOT, "implies": k.IMPLIES, "xor": k.XOR, "eq": k.EQUAL,
            "distinct": k.DISTINCT, "ite": k.ITE,
            "bvneg": k.BV_NEG, "bvadd": k.BV_ADD, "bvsub": k.BV_SUB, "bvmul": k.BV_MUL, "bvsdiv": k.BV_SDIV,
            "bvudiv": k.BV_UDIV, "bvsrem": k.BV_SREM, "bvurem": k.BV_UREM, "bvsmod": k.BV_SMOD,
            "bvule": k.BV_ULE, "bvsle": k.BV_SLE, "bvuge": k.BV_UGE, "bvsge": k.BV_SGE, "bvult": k.BV_ULT,
            "bvslt": k.BV_SLT, "bvugt": k.BV_UGT, "bvsgt": k.BV_SGT,
            "bvand": k.BV_AND, "bvor": k.BV_OR, "bvnot": k.BV_NOT, "bvxor": k.BV_XOR, "bvnand": k.BV_NAND,
            "bvnor": k.BV_NOR, "bvxnor": k.BV_XNOR, "concat": k.BV_CONCAT, "bvredor": k.BV_REDOR,
            "bvredand": k.BV_REDAND, "bvshl": k.BV_SHL, "bvlshr": k.BV_SHR,
            "bvashr": k.BV_ASHR, "extract": k.BV_EXTRACT, "zero_extend": k.BV_ZERO_EXTEND,
            "sign_extend": k.BV_SIGN_EXTEND, "repeat": k.BV_REPEAT,
        }

    def _sort(self, width: int | None) -> Any:
        if width is None:
            return self.tm.mk_bool_sort()
        if width not in self._bv_sorts:
            self._bv_sorts[width] = self.tm.mk_bv_sort(width)
        return self._bv_sorts[width]

    def const(self, name: str, width: int | None) -> Any:
        return self.tm.mk_const(self._sort(width), name)

    def bool_value(self, value: bool) -> Any:
        return self.tm.mk_true() if value else self.tm.mk_false()

    def bv_value(self, value: int, width: int) -> Any:
        return self.tm.mk_bv_value(self._sort(width), str(value), 10)

    def apply(self, op: str, args: list[Any], indices: list[int]) -> Any:
        return self.tm.mk_term(self._kinds[op], args, indices) if indices else self.tm.mk_term(self._kinds[op], args)


# -- cvc5 -----------------------------------------------------------------------------------------------


class Cvc5Translator(Translator[Any]):
    name = "cvc5"

    def __init__(self) -> None:
        import cvc5

        super().__init__()
        self.cvc5 = cvc5
        self.tm = cvc5.TermManager()
        self._bv_sorts: dict[int, Any] = {}
        k = cvc5.Kind
        self._kinds: dict[str, Any] = {
            "and": k.AND, "or": k.OR, "not": k.NOT, "implies": k.IMPLIES, "xor": k.XOR, "eq": k.EQUAL,
            "distinct": k.DISTINCT, "ite": k.ITE,
            "bvneg": k.BITVECTOR_NEG, "bvadd": k.BITVECTOR_ADD, "bvsub": k.BITVECTOR_SUB,
            "bvmul": k.BITVECTOR_MULT, "bvsdiv": k.BITVECTOR_SDIV, "bvudiv": k.BITVECTOR_UDIV,
            "bvsrem": k.BITVECTOR_SREM, "bvurem": k.BITVECTOR_UREM, "bvsmod": k.BITVECTOR_SMOD,
            "bvule": k.BITVECTOR_ULE, "bvsle": k.BITVECTOR_SLE, "bvuge": k.BITVECTOR_UGE,
            "bvsge": k.BITVECTOR_SGE, "bvult": k.BITVECTOR_ULT, "bvslt": k.BITVECTOR_SLT,
            "bvugt": k.BITVECTOR_UGT, "bvsgt": k.BITVECTOR_SGT,
            "bvand": k.BITVECTOR_AND, "bvor": k.BITVECTOR_OR, "bvnot": k.BITVECTOR_NOT,
            "bvxor": k.BITVECTOR_XOR, "bvnand": k.BITVECTOR_NAND, "bvnor": k.BITVECTOR_NOR,
            "bvxnor": k.BITVECTOR_XNOR, "concat": k.BITVECTOR_CONCAT, "bvredor": k.BITVECTOR_REDOR,
            "bvredand": k.BITVECTOR_REDAND, "bvshl": k.BITVECTOR_SHL,
            "bvlshr": k.BITVECTOR_LSHR, "bvashr": k.BITVECTOR_ASHR, "extract": k.BITVECTOR_EXTRACT,
            "zero_extend": k.BITVECTOR_ZERO_EXTEND, "sign_extend": k.BITVECTOR_SIGN_EXTEND,
            "repeat": k.BITVECTOR_REPEAT,
        }

    def _sort(self, width: int | None) -> Any:
        if width is None:
            return self.tm.getBooleanSort()
        if width not in self._bv_sorts:
            self._bv_sorts[width] = self.tm.mkBitVectorSort(width)
        return self._bv_sorts[width]

    def const(self, name: str, width: int | None) -> Any:
        return self.tm.mkConst(self._sort(width), name)

    def bool_value(self, value: bool) -> Any:
        return self.tm.mkBoolean(value)

    def bv_value(self, value: int, width: int) -> Any:
        return self.tm.mkBitVector(width, str(value), 10)

    def apply(self, op: str, args: list[Any], indices: list[int]) -> Any:
        kind = self._kinds[op]
        if indices:
            return self.tm.mkTerm(self.tm.mkOp(kind, *indices), *args)
        return self.tm.mkTerm(kind, *args)


TRANSLATORS: dict[str, Callable[[], Translator[Any]]] = {"bitwuzla": BitwuzlaTranslator, "cvc5": Cvc5Translator}
_live: dict[str, Translator[Any]] = {}


def translator(name: str) -> Translator[Any]:
    """This process's translator to ``name`` (one term manager, one memo, kept across queries)."""
    if name not in _live:
        _live[name] = TRANSLATORS[name]()
    return _live[name]
