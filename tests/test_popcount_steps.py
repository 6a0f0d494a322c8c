"""``free-bits-count`` in steps: the lemmas hold and can fail, the steps prove only what the whole query proves."""

from __future__ import annotations

from dataclasses import replace

import pytest
import z3

from pcpuverify.invariants.check import STATE_INVARIANTS, invariants_for
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs import popcount_steps
from pcpuverify.proofs.obligations import Transition, transition
from pcpuverify.proofs.solver import SolverOptions, check
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.symbolic.encode import SymPercpu
from pcpuverify.symbolic.state import SymChunk
from pcpuverify.symbolic.subjects import subject

BITWUZLA = SolverOptions(solver="bitwuzla")
FREE_BITS = next(i for i in STATE_INVARIANTS if i.name == popcount_steps.INVARIANT)


@pytest.fixture(autouse=True)
def lemmas_asked_again() -> None:
    popcount_steps._proved.clear()  # proved once per process: each test asks its own


@pytest.mark.parametrize("n", [8, 24, 40, 64, 96])
def test_the_lemmas_are_proved_at_every_width_by_its_parts(n: int) -> None:
    """Powers of two and not: bv.popcount's tree splits 24 bits as 16 + 8, 40 as 32 + 8, 96 as 64 + 32."""
    lemmas = popcount_steps.lemmas(n, BITWUZLA)
    assert lemmas.proved, [a.status for a in lemmas.answers]
    assert len(lemmas.answers) > 2 if n > popcount_steps.DIRECT else len(lemmas.answers) == 2


def test_a_false_lemma_is_not_proved(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without "no bit in common" the union's popcount is not the sum: the widest split's query is sat."""
    def overlapping(x: z3.BitVecRef, d: z3.BitVecRef, n: int) -> z3.BoolRef:
        return popcount_steps.popcount(x | d, n) == popcount_steps.popcount(x, n) + popcount_steps.popcount(d, n)

    monkeypatch.setattr(popcount_steps, "disjoint", overlapping)
    lemmas = popcount_steps.lemmas(24, BITWUZLA)
    assert not lemmas.proved and "sat" in [a.status for a in lemmas.answers]


def _query(variant: str, geometry: str, kind: str, wrong_by: int = 0
           ) -> tuple[SymPercpu, SymChunk, Transition, list[z3.BoolRef]]:
    """The whole consecution query's parts for free-bits-count (every state invariant of the layout held before,
    as in Houdini's first round), with the operation's ``free_bits`` off by ``wrong_by`` (a 2017 chunk's field):
    the encoding, the pre-state, the transition, the assumptions."""
    g = Geometry.parse(geometry)
    enc = subject(variant).require_encoding()(g)
    pre = enc.fresh_chunk("pre")
    t = transition(enc, kind, pre, "op")
    if wrong_by:
        t = replace(t, step=replace(t.step, post=t.step.post.set(free_bits=t.step.post.free_bits + wrong_by)))
    post = t.step.post
    held = [i.z3(pre) for i in invariants_for(subject(variant).require_encoding().chunk_layout)
            if i.kind == "state" and i.z3 is not None]
    assumptions = [enc.well_formed(pre), *held, t.precondition, t.step.unrolled, z3.Not(post.oob_write)]
    return enc, pre, t, assumptions


@pytest.mark.parametrize(("variant", "geometry"), [
    ("fixed", "2x32"), pytest.param("mainline", "1x64", marks=pytest.mark.slow)])  # a 5.2 chunk: 45 s for alloc
@pytest.mark.parametrize("kind", popcount_steps.KINDS)
def test_the_steps_prove_the_row(variant: str, geometry: str, kind: str) -> None:
    enc, pre, t, assumptions = _query(variant, geometry, kind)
    fresh = (enc.fresh_chunk("before"), enc.fresh_chunk("after"))
    answer = popcount_steps.prove(FREE_BITS, kind, pre, t, assumptions, fresh, BITWUZLA)
    assert answer is not None and answer.status == "unsat" and answer.solver == "bitwuzla (popcount steps)"
    assert {"bitwuzla (popcount shape)", "bitwuzla (popcount step)"} <= set(answer.times)


@pytest.mark.parametrize("kind", popcount_steps.KINDS)
def test_the_steps_prove_nothing_the_whole_query_refutes(kind: str) -> None:
    """An operation whose free_bits is off by one: no shape, so no answer from the steps; the whole query is
    sat."""
    enc, pre, t, assumptions = _query("fixed", "1x64", kind, wrong_by=1)
    fresh = (enc.fresh_chunk("before"), enc.fresh_chunk("after"))
    assert popcount_steps.prove(FREE_BITS, kind, pre, t, assumptions, fresh, BITWUZLA) is None
    assert check([*assumptions, z3.Not(FREE_BITS.z3(t.step.post))], BITWUZLA).status == "sat"


def test_the_suite_gives_the_same_verdicts_with_the_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 2x8, where the suite asks the whole query (below ``FROM_BITS``), and with the steps forced there."""
    def rows() -> dict[tuple[str, str], tuple[str, str]]:
        results = run_suite("fixed", Geometry.parse("2x8"), SuiteOptions(solver=BITWUZLA),
                            invariants={popcount_steps.INVARIANT})
        return {(r.invariant, r.op): (r.verdict.name, str(r.extra.get("solver"))) for r in results}

    whole = rows()
    monkeypatch.setattr(popcount_steps, "FROM_BITS", 8)
    stepped = rows()
    assert {k: v[0] for k, v in stepped.items()} == {k: v[0] for k, v in whole.items()}
    assert {k: v[1] for k, v in stepped.items() if k[1] in popcount_steps.KINDS} == {
        (popcount_steps.INVARIANT, kind): "bitwuzla (popcount steps)" for kind in popcount_steps.KINDS}
    assert whole[(popcount_steps.INVARIANT, "alloc")] == ("PROVED", "bitwuzla")
