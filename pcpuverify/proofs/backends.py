"""One query on one solver, in this process: Z3 directly, Bitwuzla and cvc5 through ``translate``.

Every back end answers with an ``Outcome``: plain values (no solver objects),
so that it crosses a process boundary, and so that a sat answer from any
solver becomes the same thing, a Z3 model built from the values of the
query's constants (``z3_model``).  The suite evaluates its terms in that
model and replays the trace it gives on ``model/``, whoever found it.

How each solver is bounded:

- Z3: ``rlimit`` resource units (deterministic) and ``random_seed``;
  ``timeout`` as a wall-clock net.
- cvc5: ``rlimit-per`` resource units (deterministic, in cvc5's own units,
  the same number) and ``seed``; ``tlimit-per`` as the wall-clock net.
- Bitwuzla: only a wall-clock limit (``TIME_LIMIT_PER``) and ``SEED``; it
  has no resource limit, so it is not allowed in the deterministic mode.

Bitwuzla and Z3 return at once on SIGTERM or Ctrl-C, and the signal is then
raised (``termination.py``): Bitwuzla polls for them, and Z3 is interrupted
from a watcher thread.  cvc5 can be neither: ``solver.in_turn`` solves it in
a child process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import z3

from pcpuverify.proofs.termination import interrupting, polled_signals
from pcpuverify.proofs.translate import sort_of, translator

SOLVERS = ("z3", "bitwuzla", "cvc5")
DETERMINISTIC = ("z3", "cvc5")  # those with a resource limit: the same verdict on every machine

Value = tuple[str, int | None, int]  # a constant's name, its width (None: Boolean), its value


@dataclass(frozen=True)
class Limits:
    rlimit: int
    seed: int
    timeout: float  # seconds


@dataclass
class Outcome:
    solver: str
    status: str  # "sat", "unsat" or "unknown"
    seconds: float  # translation and solving
    values: list[Value] = field(default_factory=list)
    reason: str = ""


def z3_model(values: list[Value]) -> z3.ModelRef:
    """A Z3 model holding ``values``; any other constant is completed by ``eval(term, True)``."""
    model = z3.Model()
    for name, width, value in values:
        if width is None:
            model.update_value(z3.Bool(name), z3.BoolVal(bool(value)))
        else:
            model.update_value(z3.BitVec(name, width), z3.BitVecVal(value, width))
    return model


def solve(solver: str, assertions: list[z3.BoolRef], limits: Limits) -> Outcome:
    start = time.perf_counter()
    if solver == "z3":
        return _z3(assertions, limits, start)
    if solver == "bitwuzla":
        return _bitwuzla(assertions, limits, start)
    if solver == "cvc5":
        return _cvc5(assertions, limits, start)
    raise ValueError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")


def prepare(solver: str, assertions: list[z3.BoolRef]) -> None:
    """Translate ahead (into this process's memo), so that a forked child only solves."""
    if solver != "z3":
        translator(solver).translate_all(assertions)


def _z3(assertions: list[z3.BoolRef], limits: Limits, start: float) -> Outcome:
    s = z3.SolverFor("QF_BV")
    s.set("rlimit", limits.rlimit)
    s.set("random_seed", limits.seed)
    s.set("timeout", int(limits.timeout * 1000))
    s.add(*assertions)
    status = z3_check(s)
    if status == z3.sat:
        model = s.model()
        values: list[Value] = []
        for d in model.decls():
            if d.arity() != 0:  # Z3's interpretation of division by zero, say: not a constant of the query
                continue
            v = model[d]
            width = sort_of(v)
            values.append((d.name(), width, int(z3.is_true(v)) if width is None else v.as_long()))
        return Outcome("z3", "sat", time.perf_counter() - start, values)
    if status == z3.unsat:
        return Outcome("z3", "unsat", time.perf_counter() - start)
    return Outcome("z3", "unknown", time.perf_counter() - start, reason=s.reason_unknown())


def z3_check(s: z3.Solver) -> z3.CheckSatResult:
    """``s.check()``, returning at once on SIGTERM or Ctrl-C, which are then raised (``termination.interrupting``)."""
    s.set("ctrl_c", False)  # else Z3 takes Ctrl-C itself, answers unknown, and the Ctrl-C is lost
    with interrupting(s.interrupt):
        return s.check()


def bitwuzla_check(s: Any) -> Any:
    """``s.check_sat()`` of a ``bitwuzla.Bitwuzla``, returning at once on SIGTERM or Ctrl-C, which are then raised
    (``termination.polled_signals``: the solver polls for them)."""
    with polled_signals() as signalled:
        s.configure_terminator(signalled)
        return s.check_sat()


def _bitwuzla(assertions: list[z3.BoolRef], limits: Limits, start: float) -> Outcome:
    tr = translator("bitwuzla")
    terms = tr.translate_all(assertions)
    bw = tr.bw
    opts = bw.Options()
    opts.set(bw.Option.PRODUCE_MODELS, True)
    opts.set(bw.Option.SEED, limits.seed)
    opts.set(bw.Option.TIME_LIMIT_PER, int(limits.timeout * 1000))
    s = bw.Bitwuzla(tr.tm, opts)
    for t in terms:
        s.assert_formula(t)
    result = bitwuzla_check(s)
    if result == bw.Result.SAT:
        values = [(name, width, _bw_value(s.get_value(c), width)) for (name, width), c in tr.consts.items()]
        return Outcome("bitwuzla", "sat", time.perf_counter() - start, values)
    if result == bw.Result.UNSAT:
        return Outcome("bitwuzla", "unsat", time.perf_counter() - start)
    return Outcome("bitwuzla", "unknown", time.perf_counter() - start,
                   reason=f"bitwuzla: unknown (time limit {limits.timeout:g}s)")


def _bw_value(term: object, width: int | None) -> int:
    if width is None:
        return int(term.value())  # type: ignore[attr-defined]
    return int(term.value(10))  # type: ignore[attr-defined]


def _cvc5(assertions: list[z3.BoolRef], limits: Limits, start: float) -> Outcome:
    tr = translator("cvc5")
    terms = tr.translate_all(assertions)
    s = tr.cvc5.Solver(tr.tm)
    s.setLogic("QF_BV")
    s.setOption("produce-models", "true")
    s.setOption("bitblast", "eager")  # pure QF_BV: 12x faster than the lazy default on a 1x8 consecution query
    s.setOption("seed", str(limits.seed))
    s.setOption("rlimit-per", str(limits.rlimit))
    s.setOption("tlimit-per", str(int(limits.timeout * 1000)))
    for t in terms:
        s.assertFormula(t)
    result = s.checkSat()
    if result.isSat():
        values = [(name, width, _cvc5_value(s.getValue(c), width)) for (name, width), c in tr.consts.items()]
        return Outcome("cvc5", "sat", time.perf_counter() - start, values)
    if result.isUnsat():
        return Outcome("cvc5", "unsat", time.perf_counter() - start)
    return Outcome("cvc5", "unknown", time.perf_counter() - start, reason=f"cvc5: {result.getUnknownExplanation()}")


def _cvc5_value(term: object, width: int | None) -> int:
    if width is None:
        return int(term.getBooleanValue())  # type: ignore[attr-defined]
    return int(term.getBitVectorValue(10))  # type: ignore[attr-defined]
