"""Benchmark: does reusing the transition encoding across queries help a solver?  (issue 12, part 2)

    python bench/bench_incremental.py [--variant fixed] [--ops alloc,free] [GEOMETRY ...]

One Houdini round per operation (every state invariant held, each
invariant's consecution a query: the queries share the well-formedness,
the strengthening and the transition, and differ in their target) is solved
four ways per solver, and the table gives each way's total CPU seconds (every
solver runs in this process, so CPU time, unlike wall time, does not move
with the load of a shared machine) and its ratio to the first:

- ``fresh``: a new solver per query, as the suite asks;
- ``push/pop``: one solver holds the shared part; each target is pushed,
  checked and popped;
- ``assumptions``: one solver holds the shared part and every target behind
  its own literal (``lit -> target``); each query is a check under one literal;
- ``fresh+slice``: a new solver per query, the strengthening sliced to the
  target's cone of influence (``proofs/slicing.py``), for comparison.

Every way must give every query the same answer (the table says so); a
difference would be a bug, not a speed-up.  Bitwuzla and cvc5 get the Z3
terms through ``proofs/translate.py``, as in the suite.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import z3
from rich.console import Console
from rich.table import Table

from pcpuverify.invariants.base import Invariant
from pcpuverify.invariants.check import STATE_INVARIANTS
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.backends import Limits, solve
from pcpuverify.proofs.obligations import transition
from pcpuverify.proofs.slicing import Cone
from pcpuverify.proofs.solver import SolverOptions
from pcpuverify.proofs.translate import translator
from pcpuverify.symbolic.state import fresh_chunk, well_formed
from pcpuverify.symbolic.subjects import subject

WAYS = ("fresh", "push/pop", "assumptions", "fresh+slice")
SOLVERS = ("z3", "bitwuzla", "cvc5")

Round = tuple[list[z3.BoolRef], list[z3.BoolRef], list[list[z3.BoolRef]]]  # shared, targets, sliced queries


def houdini_round(variant: str, geometry: Geometry, kind: str) -> Round:
    enc = subject(variant).require_encoding()(geometry)
    pre = fresh_chunk(geometry, "pre")
    t = transition(enc, kind, pre, "op")
    invs = [i for i in STATE_INVARIANTS if i.z3 is not None]
    side = [well_formed(pre), t.precondition, t.step.unrolled, z3.Not(t.step.post.oob_write)]
    targets = [z3.Not(i.z3(t.step.post)) for i in invs]
    cone = Cone()

    def on_pre(inv: Invariant) -> z3.BoolRef:
        return inv.z3(pre)

    sliced = [[*side, *[on_pre(i) for i in cone.slice(target, invs, on_pre)], target] for target in targets]
    return [*side, *[i.z3(pre) for i in invs]], targets, sliced


def fresh(solver: str, shared: list[z3.BoolRef], targets: list[z3.BoolRef], limits: Limits) -> list[str]:
    return [solve(solver, [*shared, target], limits).status for target in targets]


def fresh_sliced(solver: str, queries: list[list[z3.BoolRef]], limits: Limits) -> list[str]:
    return [solve(solver, query, limits).status for query in queries]


def incremental(solver: str, shared: list[z3.BoolRef], targets: list[z3.BoolRef], limits: Limits,
                assumptions: bool) -> list[str]:
    """One solver instance for the round: each target pushed and popped, or each behind its own literal."""
    lits = [z3.Bool(f"target.{k}") for k in range(len(targets))]
    guarded = [z3.Implies(lit, target) for lit, target in zip(lits, targets)]
    if solver == "z3":
        s = z3.SolverFor("QF_BV")
        s.set("rlimit", limits.rlimit)
        s.set("random_seed", limits.seed)
        s.add(*shared)
        if assumptions:
            s.add(*guarded)
            return [str(s.check(lit)) for lit in lits]
        out = []
        for target in targets:
            s.push()
            s.add(target)
            out.append(str(s.check()))
            s.pop()
        return out
    tr = translator(solver)
    if solver == "bitwuzla":
        bw = tr.bw
        opts = bw.Options()
        opts.set(bw.Option.SEED, limits.seed)
        b = bw.Bitwuzla(tr.tm, opts)
        for term in tr.translate_all(shared):
            b.assert_formula(term)
        names = {bw.Result.SAT: "sat", bw.Result.UNSAT: "unsat"}
        if assumptions:
            for term in tr.translate_all(guarded):
                b.assert_formula(term)
            return [names.get(b.check_sat(lit), "unknown") for lit in tr.translate_all(lits)]
        out = []
        for target in tr.translate_all(targets):
            b.push(1)
            b.assert_formula(target)
            out.append(names.get(b.check_sat(), "unknown"))
            b.pop(1)
        return out
    c = tr.cvc5.Solver(tr.tm)
    c.setLogic("QF_BV")
    c.setOption("incremental", "true")
    c.setOption("seed", str(limits.seed))
    for term in tr.translate_all(shared):
        c.assertFormula(term)

    def name(r: object) -> str:
        return "sat" if r.isSat() else "unsat" if r.isUnsat() else "unknown"  # type: ignore[attr-defined]

    if assumptions:
        for term in tr.translate_all(guarded):
            c.assertFormula(term)
        return [name(c.checkSatAssuming(lit)) for lit in tr.translate_all(lits)]
    out = []
    for target in tr.translate_all(targets):
        c.push()
        c.assertFormula(target)
        out.append(name(c.checkSat()))
        c.pop()
    return out


def timed(fn: Callable[[], list[str]]) -> tuple[float, list[str]]:
    """CPU seconds of this process (the solvers run here), and the answers."""
    start = time.process_time()
    answers = fn()
    return time.process_time() - start, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("geometries", nargs="*", default=["2x8"])
    parser.add_argument("--variant", default="fixed")
    parser.add_argument("--ops", type=lambda v: v.split(","), default=["alloc", "free"])
    parser.add_argument("--solvers", type=lambda v: v.split(","), default=list(SOLVERS))
    args = parser.parse_args()
    defaults = SolverOptions()
    limits = Limits(defaults.rlimit, defaults.seed, defaults.timeout)
    table = Table(title=f"one Houdini round per operation ({args.variant}, every state invariant held): CPU seconds,"
                        " and the ratio to a fresh solver per query")
    for col in ("geometry", "op", "queries", "solver", *WAYS, "same answers"):
        table.add_column(col, justify="left" if col in ("geometry", "op", "solver", "same answers") else "right")
    console = Console(width=200)
    for spec in args.geometries:
        g = Geometry.parse(spec)
        for kind in args.ops:
            shared, targets, sliced = houdini_round(args.variant, g, kind)
            for solver in args.solvers:
                runs = {
                    "fresh": timed(partial(fresh, solver, shared, targets, limits)),
                    "push/pop": timed(partial(incremental, solver, shared, targets, limits, assumptions=False)),
                    "assumptions": timed(partial(incremental, solver, shared, targets, limits, assumptions=True)),
                    "fresh+slice": timed(partial(fresh_sliced, solver, sliced, limits)),
                }
                base = runs["fresh"][0]
                same = all(answers == runs["fresh"][1] for _, answers in runs.values())
                table.add_row(spec, kind, str(len(targets)), solver,
                              *[f"{runs[w][0]:.1f}s x{runs[w][0] / base:.2f}" for w in WAYS],
                              "yes" if same else "NO: " + " ".join(f"{w}={runs[w][1]}" for w in WAYS))
                console.print(f"{spec} {kind} {solver}: " + ", ".join(f"{w} {runs[w][0]:.1f}s" for w in WAYS))
    console.print(table)


if __name__ == "__main__":
    main()
