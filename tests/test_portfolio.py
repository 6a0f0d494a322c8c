"""The solver settings: every solver gives Z3's verdicts, the portfolio's rules, and models usable from any solver."""

from __future__ import annotations

import pytest
import z3

from pcpuverify.invariants.check import STATE_INVARIANTS
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.backends import Limits
from pcpuverify.proofs.obligations import transition
from pcpuverify.proofs.portfolio import Settled, race
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import SolverOptions, check, check_all, in_turn
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.symbolic.state import fresh_chunk, well_formed
from pcpuverify.symbolic.subjects import subject

ONE_BLOCK = Geometry.parse("1x8")


def _consecution(name: str, kind: str, held: bool = True) -> list[z3.BoolRef]:
    """One consecution query of ``fixed`` at 1x8 (unsat), or without the strengthening (sat)."""
    enc = subject("fixed").require_encoding()(ONE_BLOCK)
    pre = fresh_chunk(ONE_BLOCK, "pre")
    t = transition(enc, kind, pre, "op")
    invs = [i for i in STATE_INVARIANTS if i.z3 is not None]
    (inv,) = [i for i in invs if i.name == name]
    strengthening = [i.z3(pre) for i in invs] if held else []
    return [well_formed(pre), *strengthening, t.precondition, t.step.unrolled, z3.Not(t.step.post.oob_write),
            z3.Not(inv.z3(t.step.post))]


@pytest.mark.parametrize("solver", ["z3", "bitwuzla", "cvc5", "portfolio"])
def test_unsat_and_sat_with_a_usable_model(solver: str) -> None:
    """Each setting proves a consecution query, and the model of a sat one satisfies it in Z3."""
    options = SolverOptions(solver=solver, jobs=2)
    proved, broken = check_all([_consecution("free-bits-count", "free"),
                                _consecution("free-bits-count", "free", held=False)], options)
    assert proved.status == "unsat"
    assert broken.status == "sat" and broken.model is not None
    assert all(z3.is_true(broken.model.eval(a, True)) for a in _consecution("free-bits-count", "free", held=False))
    for answer in (proved, broken):
        assert answer.solver in options.solvers and answer.times[answer.solver]["status"] == answer.status


def test_an_unknown_is_not_final_in_the_portfolio() -> None:
    """Z3 runs out of resource units first (one worker: the solvers in turn); Bitwuzla, bounded by the clock
    only, still answers."""
    (settled,) = race([_consecution("free-bits-count", "free")], ("z3", "bitwuzla"), Limits(1, 0, 60.0), jobs=1)
    assert [(o.solver, o.status) for o in settled.outcomes] == [("z3", "unknown"), ("bitwuzla", "unsat")]
    assert settled.winner.solver == "bitwuzla"


def test_one_worker_tries_the_solvers_in_turn() -> None:
    (z3_out, bitwuzla_out), winner = _outcomes(in_turn(("z3", "bitwuzla"), _consecution("free-bits-count", "free"),
                                                       Limits(1, 0, 60.0)))
    assert (z3_out, bitwuzla_out, winner) == (("z3", "unknown"), ("bitwuzla", "unsat"), ("bitwuzla", "unsat"))


def _outcomes(settled: Settled) -> tuple[list[tuple[str, str]], tuple[str, str]]:
    return [(o.solver, o.status) for o in settled.outcomes], (settled.winner.solver, settled.winner.status)


def test_a_definite_answer_settles_the_query() -> None:
    """Two queries, two workers: each starts on its first solver, and a freed worker races the second solver on
    the query still open; whichever answers first settles it and the other is cut, never counted."""
    settled = race([_consecution("free-bits-count", "free"), _consecution("free-bits-count", "free", held=False)],
                   ("bitwuzla", "z3"), Limits(2_000_000_000, 0, 60.0), jobs=2)
    assert [s.winner.status for s in settled] == ["unsat", "sat"]
    assert all(o.status == "cut" for s in settled for o in s.outcomes if o is not s.winner)


@pytest.mark.slow
def test_all_unknown_is_unknown_never_a_pass() -> None:
    starved = SolverOptions(solver="portfolio", rlimit=1, timeout=0.001, jobs=2)
    answer = check(_consecution("block-hints-match-scan", "alloc"), starved)
    assert answer.status == "unknown" and answer.model is None
    assert set(answer.times) == {"z3", "bitwuzla", "cvc5"}
    results = run_suite("fixed", ONE_BLOCK, SuiteOptions(solver=starved, depth=1, conformance_steps=4),
                        invariants={"block-hints-match-scan"}, ops={"alloc"})
    consecution = [r for r in results if r.op == "alloc"]
    assert consecution and all(r.verdict is Verdict.UNKNOWN for r in consecution)


def test_deterministic_mode_is_the_resource_limited_solvers() -> None:
    assert [s for s in ("z3", "bitwuzla", "cvc5", "portfolio") if SolverOptions(solver=s).deterministic] == ["z3", "cvc5"]
    with pytest.raises(ValueError, match="unknown solver"):
        SolverOptions(solver="yices")


def _rows(results: list[Result]) -> dict[tuple[str, str], str]:
    return {(r.invariant, r.op): r.verdict.value for r in results}


@pytest.fixture(scope="module")
def by_z3() -> dict[str, list[Result]]:
    return {v: run_suite(v, ONE_BLOCK, SuiteOptions(depth=3)) for v in ("fixed", "v1")}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["fixed", "v1"])
@pytest.mark.parametrize("solver", ["bitwuzla", "cvc5", "portfolio"])
def test_verdicts_equal_z3s(by_z3: dict[str, list[Result]], variant: str, solver: str) -> None:
    """The whole suite at 1x8: the same verdict on every row as with Z3 alone, answered by the solver asked."""
    results = run_suite(variant, ONE_BLOCK, SuiteOptions(solver=SolverOptions(solver=solver, jobs=2), depth=3))
    assert _rows(results) == _rows(by_z3[variant])
    # a row answered by a route (run_bridge's "bitwuzla (runs from the blocks)") names its solvers before it
    answered = {name for r in results if "solver" in r.extra for name in r.extra["solver"].split(" (")[0].split("+")}
    assert answered <= set(SolverOptions(solver=solver).solvers) and (solver == "portfolio" or answered == {solver})
    if variant == "v1":  # its violations come from this solver's models, replayed on model/
        found = [q for r in results if r.verdict is Verdict.VIOLATED for q in r.extra.get("bmc", [])]
        assert found and all(q["solver"] in SolverOptions(solver=solver).solvers for q in found)
