"""Shortest counterexamples from the solver: fewest operations, then smallest arguments, then smallest geometry.

1. Length: iterative deepening of the bounded model check from a new chunk
   (every set of populated pages), any kind of last operation; among kinds
   that break at the same depth, the first of alloc, free, populate,
   depopulate.
2. Arguments, for that length and those kinds of operation, lowered one at a
   time in this order and each kept at its least value before the next is
   lowered: step by step from the first operation, within a step ``bits``,
   ``align``, ``pop_only`` (false before true), ``bit_off``, ``page_start``,
   ``page_end``; last the initially populated pages (as a bitmask, so fewer
   and lower pages first).
3. Geometry: the same search on every smaller geometry, fewest bits first
   (pages before bits per block on a tie); the first that breaks the
   invariant within the same length wins.

The result is replayed on ``model/`` and must break the same invariant at
its last step, or it is not returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from pcpuverify.invariants.check import first_violation, invariant
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import ChunkInit
from pcpuverify.model.trace import Trace
from pcpuverify.proofs.obligations import OPS, concrete_op, concrete_populated, transition
from pcpuverify.proofs.solver import SolverOptions, check
from pcpuverify.proofs.suite import Bmc, Breach, SuiteOptions
from pcpuverify.symbolic.bv import INT_W, I
from pcpuverify.symbolic.subjects import subject


@dataclass(frozen=True)
class Shortest:
    trace: Trace
    depth: int


def _lowered(assertions: list[z3.BoolRef], terms: list[z3.BitVecRef], model: z3.ModelRef,
             options: SolverOptions) -> z3.ModelRef:
    """Lower each term in turn to its least value consistent with the ones already fixed."""
    fixed = list(assertions)
    for term in terms:
        value = model.eval(term, True)
        while True:
            smaller = term < value if term.size() == INT_W else z3.ULT(term, value)  # C ints are signed
            answer = check([*fixed, smaller], options)
            if answer.status != "sat" or answer.model is None:
                break
            model = answer.model
            value = model.eval(term, True)
        fixed.append(term == value)
    return model


def shortest_on(variant: str, geometry: Geometry, name: str, max_depth: int,
                options: SolverOptions | None = None) -> Shortest | None:
    """Steps 1 and 2 on one geometry."""
    options = options or SolverOptions()
    bmc = Bmc(subject(variant).require_encoding()(geometry), SuiteOptions(solver=options, depth=max_depth))
    breach = Breach(invariant(name))
    found = bmc.search(list(OPS), breach)
    hits = sorted((f.depth, OPS.index(kind), kind) for kind, f in found.items() if f.model is not None)
    if not hits:
        return None
    depth, _, kind = hits[0]
    pre = bmc.states[depth - 1]
    last = transition(bmc.enc, kind, pre, f"bmc{depth}.last")
    assertions = [*bmc.constraints[: depth - 1], *breach.kept(bmc, depth - 1),
                  last.precondition, last.step.unrolled, breach.at(pre, last)]
    answer = check(assertions, options)
    assert answer.model is not None, "the search found this depth satisfiable"
    model = answer.model
    kinds = [OPS[model.eval(sel, True).as_long()] for sel, _ in bmc.choices[: depth - 1]]
    assertions += [sel == OPS.index(k) for (sel, _), k in zip(bmc.choices, kinds)]
    steps = [ts[k].op for (_, ts), k in zip(bmc.choices, kinds)] + [last.op]
    terms = [
        getattr(op, arg)
        for op in steps
        for arg in {"alloc": ("bits", "align"), "free": ("bit_off",)}.get(op.kind, ("page_start", "page_end"))
    ]
    pop_only = [z3.If(op.pop_only, I(1), I(0)) for op in steps if op.kind == "alloc"]
    model = _lowered(assertions, [*terms, *pop_only, bmc.populated], model, options)
    ops = tuple(concrete_op(model, op) for op in steps)
    trace = Trace(variant, concrete_populated(model, bmc.populated, geometry), ChunkInit(), ops, name)
    if first_violation(trace, name) != len(ops) - 1:
        raise AssertionError(f"solver trace does not replay: {trace.to_json()}")
    return Shortest(trace, depth)


def smaller_geometries(geometry: Geometry) -> list[Geometry]:
    sizes = [(p, b) for p in range(1, geometry.nr_pages + 1) for b in (4, 8, 16, 32, 64, 128, 256, 512, 1024)
             if b <= geometry.block_bits and (p, b) != (geometry.nr_pages, geometry.block_bits)]
    return [Geometry(b, p, tuple(range(p))) for p, b in sorted(sizes, key=lambda pb: (pb[0] * pb[1], pb[0]))]


def shortest_counterexample(variant: str, geometry: Geometry, name: str, max_depth: int,
                            options: SolverOptions | None = None) -> Shortest | None:
    """Steps 1 to 3: the shortest trace, its smallest arguments, the smallest geometry that shows it."""
    best = shortest_on(variant, geometry, name, max_depth, options)
    if best is None:
        return None
    for smaller in smaller_geometries(geometry):
        found = shortest_on(variant, smaller, name, best.depth, options)
        if found is not None and found.depth <= best.depth:
            return found
    return best
