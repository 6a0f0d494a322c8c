"""``block-hints-match-scan`` asked at instances: the weaker queries follow from the whole one, every block that
breaks the invariant meets one of them, and the suite gives the same verdicts with and without them."""

from __future__ import annotations

import pytest
import z3

from pcpuverify.invariants.base import REGISTRY
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs import scan_instances
from pcpuverify.proofs.obligations import transition
from pcpuverify.proofs.solver import Answer, SolverOptions, check, check_all
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.symbolic.state import SymChunk
from pcpuverify.symbolic.subjects import subject

BITWUZLA = SolverOptions(solver="bitwuzla")
Z3 = SolverOptions(solver="z3")
INVARIANT = REGISTRY[scan_instances.INVARIANT]


def _step(variant: str, geometry: str, kind: str) -> tuple[list[z3.BoolRef], SymChunk, SymChunk]:
    """The operation's assumptions (no invariant), and the chunks before and after it."""
    enc = subject(variant).require_encoding()(Geometry.parse(geometry))
    pre = enc.fresh_chunk("pre")
    t = transition(enc, kind, pre, "op")
    return [enc.well_formed(pre), t.precondition, t.step.unrolled, z3.Not(t.step.post.oob_write)], pre, t.step.post


@pytest.mark.parametrize("kind", ["alloc", "free"])
def test_what_each_part_assumes_follows_from_the_invariant(kind: str) -> None:
    side, pre, post = _step("fixed", "2x8", kind)
    parts = scan_instances.parts(pre, post)
    assert len(parts) == 2 * 5  # two blocks, five conjuncts each
    answers = check_all([[*side, INVARIANT.z3(pre), z3.Not(z3.And(p.given))] for p in parts], BITWUZLA)
    assert [a.status for a in answers] == ["unsat"] * len(parts)


@pytest.mark.parametrize("geometry", ["1x8", "2x8"])
def test_every_chunk_that_breaks_the_invariant_meets_a_negation(geometry: str) -> None:
    """A negation that names a witness is met for some witness: bound here by Exists, so the solver may not pick
    it."""
    chunk = subject("fixed").require_encoding()(Geometry.parse(geometry)).fresh_chunk("c")
    negations = [z3.Exists([p.witness], p.negation) if p.witness is not None else p.negation
                 for p in scan_instances.parts(chunk, chunk)]
    broken = z3.Not(INVARIANT.z3(chunk))
    assert check([broken, *[z3.Not(n) for n in negations]], Z3).status == "unsat"
    # and none is idle: without any one of them, some chunk breaks the invariant and meets none of the others
    without_one = [[broken, *[z3.Not(n) for n in negations if n is not left_out]] for left_out in negations]
    assert [a.status for a in check_all(without_one, Z3)] == ["sat"] * len(negations)


@pytest.mark.parametrize("kind", ["alloc", "free"])
def test_the_parts_prove_fixed(kind: str) -> None:
    side, pre, post = _step("fixed", "2x16", kind)
    answers = check_all([[*side, *p.given, p.negation] for p in scan_instances.parts(pre, post)], BITWUZLA)
    answer = scan_instances.combined(scan_instances.parts(pre, post), answers)
    assert answer is not None and answer.status == "unsat"
    assert answer.solver == "bitwuzla (scan at instances)"
    assert "bitwuzla (block 1: no run of contig_hint + 1 bits)" in answer.times


def test_the_parts_prove_nothing_the_whole_query_refutes() -> None:
    """After any chunk at all (not the operation's): the whole query is sat, and so is some part."""
    side, pre, _ = _step("fixed", "2x8", "alloc")
    _, _, other = _step("fixed", "2x8", "free")
    assert check([*side, INVARIANT.z3(pre), z3.Not(INVARIANT.z3(other))], BITWUZLA).status == "sat"
    parts = scan_instances.parts(pre, other)
    answers = check_all([[*side, *p.given, p.negation] for p in parts], BITWUZLA)
    assert "sat" in {a.status for a in answers}
    assert scan_instances.combined(parts, answers) is None


def test_an_unknown_part_leaves_the_query_to_be_asked_whole() -> None:
    side, pre, post = _step("fixed", "1x8", "alloc")
    parts = scan_instances.parts(pre, post)
    answers = [Answer("unsat", 0.1, solver="bitwuzla") for _ in parts]
    assert scan_instances.combined(parts, answers) is not None
    answers[-1] = Answer("unknown", 0.1, reason="timeout", solver="bitwuzla")
    assert scan_instances.combined(parts, answers) is None


def test_the_route_starts_at_64_bit_blocks() -> None:
    narrow = subject("fixed").require_encoding()(Geometry.parse("4x32")).fresh_chunk("c")
    wide = subject("fixed").require_encoding()(Geometry.parse("1x64")).fresh_chunk("c")
    assert not scan_instances.applies(INVARIANT, "alloc", narrow)
    assert scan_instances.applies(INVARIANT, "alloc", wide) and scan_instances.applies(INVARIANT, "free", wide)
    assert not scan_instances.applies(INVARIANT, "populate", wide)
    assert not scan_instances.applies(REGISTRY["free-bits-count"], "alloc", wide)


@pytest.mark.parametrize("variant", ["fixed", pytest.param("v1", marks=pytest.mark.slow)])
def test_the_suite_gives_the_same_verdicts_at_instances(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def rows() -> dict[tuple[str, str], tuple[str, str]]:
        results = run_suite(variant, Geometry.parse("2x8"), SuiteOptions(solver=BITWUZLA))
        return {(r.invariant, r.op): (r.verdict.name, str(r.extra.get("solver"))) for r in results}

    whole = rows()
    monkeypatch.setattr(scan_instances, "FROM_BLOCK_BITS", 8)
    routed = rows()
    assert {k: v[0] for k, v in routed.items()} == {k: v[0] for k, v in whole.items()}
    answered = {k for k, v in routed.items() if v[1] == "bitwuzla (scan at instances)"}
    assert answered == {(scan_instances.INVARIANT, "alloc"), (scan_instances.INVARIANT, "free")}
    assert {whole[k] for k in answered} == {("PROVED", "bitwuzla")}
